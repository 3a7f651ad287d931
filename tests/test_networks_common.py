"""What every network of the bundle does the same way: the input check (``networks/input_check.py``)."""

from __future__ import annotations

import pytest
import torch

from lightmedseg_bundle.networks import HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg

NETWORKS = [HRMedSeg, LightMedSeg, RefineFormer3D, SegMaFormer, VeloxSeg]


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
