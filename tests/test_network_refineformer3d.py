"""Behaviour of the RefineFormer3D network: shapes, gradients, attention, exports, input errors and the overlay."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from lightmedseg_bundle.cpu import register_flop_formulas
from lightmedseg_bundle.networks.blocks.refineformer import (
    CrossAttentionFusion3d,
    EfficientAttention3d,
    LowRankLinear,
    RefineFormerEncoderStage,
)
from lightmedseg_bundle.networks.refineformer3d import RefineFormer3D

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# "RefineFormer3D contains only 2.94M parameters" (abstract of arXiv:2602.16320, Tyagi, Rathi and Goyal, 2026),
# measured on BraTS: 4 input modalities, 3 output regions.
PAPER_PARAMS = 2.94e6


@pytest.mark.parametrize(
    "in_channels, out_channels, size",
    [(1, 3, (16, 16, 16)), (2, 4, (32, 48, 64)), (4, 1, (48, 64, 48)), (1, 2, (64, 16, 32))],
)
def test_output_matches_input_size(in_channels, out_channels, size):
    net = RefineFormer3D(in_channels=in_channels, out_channels=out_channels).eval()
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, *size))
    assert out.shape == (2, out_channels, *size)
    assert torch.isfinite(out).all()


def test_parameter_count_matches_the_paper():
    net = RefineFormer3D(in_channels=4, out_channels=3)
    params = sum(p.numel() for p in net.parameters())
    assert abs(params - PAPER_PARAMS) / PAPER_PARAMS <= 0.15, f"{params} parameters vs the paper's 2.94M"


def test_attention_equals_softmax_attention_over_reduced_keys():
    """Eq. of scaled dot-product attention written out per head, keys/values from the reduced context."""
    torch.manual_seed(0)
    attention = EfficientAttention3d(channels=12, num_heads=3, reduction_ratio=2, context_channels=5).eval()
    query, context = torch.randn(2, 40, 12), torch.randn(2, 5, 4, 6, 8)
    with torch.no_grad():
        k, v = attention.key_value(attention.reduction(context)).chunk(2, dim=-1)  # (B, 4*6*8/8, 12)
        assert k.shape == (2, 24, 12)
        q = attention.query(query)
        heads = []
        for h in range(3):
            s = slice(4 * h, 4 * h + 4)
            weights = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(4), dim=-1)
            heads.append(weights @ v[..., s])
        expected = attention.proj(torch.cat(heads, dim=-1))
        assert torch.allclose(attention(query, context), expected, atol=1e-5)


def test_cross_attention_fusion_gathers_context_from_the_whole_skip_map():
    """A change in one corner of the skip map reaches the opposite corner, which no local convolution could do."""
    torch.manual_seed(0)
    fusion = CrossAttentionFusion3d(channels=8, skip_channels=16, num_heads=2, reduction_ratio=2).eval()
    x, skip = torch.randn(1, 8, 8, 8, 8), torch.randn(1, 16, 8, 8, 8)
    changed = skip.clone()
    changed[..., :2, :2, :2] += 5.0
    with torch.no_grad():
        out, out_changed = fusion(x, skip), fusion(x, changed)
    assert out.shape == (1, 8, 8, 8, 8)
    assert not torch.allclose(out[..., 6:, 6:, 6:], out_changed[..., 6:, 6:, 6:], atol=1e-4)


def test_encoder_stage_and_low_rank_projection_shapes():
    stage = RefineFormerEncoderStage(3, 16, depth=2, num_heads=2, reduction_ratio=2, mlp_ratio=4, rank=4, stride=2)
    assert stage(torch.randn(1, 3, 16, 8, 12)).shape == (1, 16, 8, 4, 6)
    projection = LowRankLinear(32, 128, rank=8)
    assert projection(torch.randn(5, 32)).shape == (5, 128)
    assert sum(p.numel() for p in projection.parameters()) == 8 * (32 + 128) + 128


def test_flop_counter_counts_the_attention():
    register_flop_formulas()  # the CPU flash-attention kernel has no formula in PyTorch
    attention = EfficientAttention3d(channels=8, num_heads=2, reduction_ratio=2).eval()
    query, context = torch.randn(1, 64, 8), torch.randn(1, 8, 4, 4, 4)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        attention(query, context)
    attention_flops = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "attention" in str(op))
    assert attention_flops == 2 * 2 * 64 * 8 * 8  # Q K^T and A V: 2 * N_q * N_kv * C multiply-adds each


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_dims": 2}, "spatial_dims"),
        ({"in_channels": 0}, "positive"),
        ({"channels": (32, 64, 160)}, "one value per encoder stage"),
        ({"reduction_ratios": (8, 2, 1, 1)}, r"reduction_ratios\[0\]` must divide 4"),
        ({"num_heads": (3, 2, 5, 8)}, "must be positive and divide the width"),
        ({"decoder_channels": (64, 32, 16)}, "3 decoder stages and of the head"),
        ({"decoder_num_heads": (4, 2)}, "one value per decoder stage"),
        ({"rank_ratio": 0.0}, "rank_ratio"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_constructor_arguments_give_a_specific_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RefineFormer3D(**kwargs)


def test_monai_metatensor_input_keeps_working():
    """Bundle pipelines feed MetaTensors; the network must accept them like plain tensors."""
    from monai.data import MetaTensor

    net = RefineFormer3D(in_channels=1, out_channels=3).eval()
    x = torch.randn(1, 1, 32, 32, 16)
    with torch.no_grad():
        out = net(MetaTensor(x, affine=torch.eye(4)))
        assert torch.allclose(torch.as_tensor(out), net(x), atol=1e-6)
