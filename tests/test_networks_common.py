"""What every network of the bundle must do the same way: check its input, train every parameter, be
deterministic in evaluation and stochastic through dropout in training (MONAI Label's MC-dropout scoring)."""

from __future__ import annotations

import pytest
import torch

from lightmedseg_bundle.networks import HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg

NETWORKS = [HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg]
#: constructor arguments for the gradient test: every parameter must be used (no stochastic depth, two modalities)
GRADIENT_KWARGS = {HRMedSeg: {"drop_path_rate": 0.0}, VeloxSeg: {"modality_channels": (1, 1)}}
WITH_DROPOUT = [LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg]


@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.__name__)
def test_bad_input_gives_a_specific_error(network):
    net = network(spatial_dims=3, in_channels=1, out_channels=2)
    k = net.size_divisible
    odd = 2 * k + k // 2  # not a multiple of k
    cases = [
        ((1, 1, 32, 32), f"{network.__name__} expects a 5D input"),
        ((1, 2, 32, 32, 32), "built for 1 input channel"),
        ((1, 1, 2 * k, odd, 2 * k), rf"multiple of {k}, got \[{2 * k}, {odd}, {2 * k}\]"),
    ]
    for shape, message in cases:
        with pytest.raises(ValueError, match=message):
            net(torch.zeros(shape))


@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.__name__)
def test_every_parameter_receives_a_gradient(network):
    torch.manual_seed(0)
    net = network(spatial_dims=3, in_channels=2, out_channels=3, **GRADIENT_KWARGS.get(network, {})).train()
    out = net(torch.randn(2, 2, 32, 32, 32))
    (out * torch.randn_like(out)).sum().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("network", WITH_DROPOUT, ids=lambda n: n.__name__)
def test_eval_mode_is_deterministic_and_dropout_only_acts_in_training(network):
    torch.manual_seed(0)
    net = network(spatial_dims=3, in_channels=1, out_channels=3, dropout=0.5).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.allclose(net(x), net(x)), "MC-dropout needs stochastic outputs in train mode"
