"""What every network of the bundle must do the same way: check its input, train every parameter, be
deterministic in evaluation and stochastic through dropout in training (MONAI Label's MC-dropout scoring), and
export to TorchScript and to ONNX with dynamic axes where its ops allow (VeloxSeg's windows do not: its own test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightmedseg_bundle.networks import HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg
from lightmedseg_bundle.networks.blocks.rotary_embedding import RotaryEmbedding3d

NETWORKS = [HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg]
#: constructor arguments for the gradient test: every parameter must be used (no stochastic depth, two modalities)
#: the refined head's correction starts at zero (an identity residual): its inner layers get gradients from the
#: second step on, so the first-step check uses the paper's transposed head
GRADIENT_KWARGS = {
    HRMedSeg: {"drop_path_rate": 0.0},
    LightMedSeg: {"head_upsample": "transposed"},
    VeloxSeg: {"modality_channels": (1, 1)},
}
WITH_DROPOUT = [LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg]
#: networks (with constructor arguments) that export to TorchScript and to ONNX with dynamic spatial axes
EXPORTABLE = [
    (LightMedSeg, {"head_upsample": "transposed"}),
    (LightMedSeg, {"head_upsample": "trilinear"}),
    (LightMedSeg, {"head_upsample": "refined"}),
    (RefineFormer3D, {}),
    (HRMedSeg, {}),
    (SegMaFormer, {}),
]
#: ONNX export size and the sizes checked; SegMaFormer's scan loop is exported as an ONNX loop, so an export at 16^3
#: (8 scan steps in stage 1) must also serve 48x64x48 (288 steps)
ONNX_SIZES = {SegMaFormer: ((16, 16, 16), [(16, 16, 16), (48, 64, 48)])}
DEFAULT_ONNX_SIZES = ((32, 48, 32), [(32, 48, 32), (64, 32, 16)])


def _export_id(case) -> str:
    network, kwargs = case
    return "-".join([network.__name__, *map(str, kwargs.values())])


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


@pytest.mark.parametrize("case", EXPORTABLE, ids=_export_id)
def test_torchscript_matches_eager(case):
    network, kwargs = case
    torch.manual_seed(0)
    net = network(spatial_dims=3, in_channels=2, out_channels=3, **kwargs).eval()
    scripted = torch.jit.script(net)
    for size in [(32, 32, 32), (16, 48, 32)]:
        x = torch.randn(1, 2, *size)
        with torch.no_grad():
            assert torch.allclose(scripted(x), net(x), atol=1e-4)
    with pytest.raises(torch.jit.Error, match=f"multiple of {net.size_divisible}"):
        scripted(torch.randn(1, 2, 20, 32, 32))


@pytest.mark.slow
@pytest.mark.parametrize("case", EXPORTABLE, ids=_export_id)
def test_onnx_runtime_matches_eager_at_every_size(tmp_path, case):
    ort = pytest.importorskip("onnxruntime")
    network, kwargs = case
    torch.manual_seed(0)
    net = network(spatial_dims=3, in_channels=1, out_channels=3, **kwargs).eval()
    export_size, sizes = ONNX_SIZES.get(network, DEFAULT_ONNX_SIZES)
    path = tmp_path / "network.onnx"
    dynamic = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    torch.onnx.export(
        net, (torch.randn(1, 1, *export_size),), str(path), dynamo=False, input_names=["image"],
        output_names=["pred"], dynamic_axes={"image": dynamic, "pred": dynamic}, opset_version=17,
    )  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in sizes:
        x = torch.randn(1, 1, *size)
        with torch.no_grad():
            expected = net(x).numpy()
        np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=1e-4)


@pytest.mark.parametrize("dim, base", [(14, 100.0), (12, 10000.0)])  # SegMaFormer per head, HRMedSeg over all channels
def test_rope_scores_depend_on_the_relative_position_only(dim, base):
    torch.manual_seed(0)
    rope = RotaryEmbedding3d(dim, base)
    grid = [5, 6, 7]
    angles = rope.angles(grid)  # (210, dim / 2)
    q, k = torch.randn(2, 3, 1, dim), torch.randn(2, 3, 1, dim)  # (B, heads, 1 token, dim)

    def score(p, r):  # <R(p) q, R(r) k> for tokens at grid positions p and r
        index = [(i[0] * grid[1] + i[1]) * grid[2] + i[2] for i in (p, r)]
        return (rope(q, angles[index[0]][None]) * rope(k, angles[index[1]][None])).sum(-1)

    assert angles.shape == (210, dim // 2)
    assert torch.allclose(score((1, 2, 3), (0, 1, 1)), score((4, 5, 6), (3, 4, 4)), atol=1e-5)
    for moved in [(1, 1, 1), (0, 2, 1), (0, 1, 2)]:  # another offset along each axis
        assert not torch.allclose(score((1, 2, 3), (0, 1, 1)), score((1, 2, 3), moved), atol=1e-3)
    assert torch.allclose(rope(q, rope.angles([1, 1, 1])), q)  # the origin is not rotated
    assert torch.allclose(rope(q, angles[:1] + 0.5).norm(dim=-1), q.norm(dim=-1), atol=1e-5)  # a rotation
