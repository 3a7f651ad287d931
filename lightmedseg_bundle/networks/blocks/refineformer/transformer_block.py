from __future__ import annotations

import torch
from torch import nn

from .efficient_attention import EfficientAttention3d
from .mix_ffn import MixFFN3d
from .tokens import to_volume

__all__ = ["RefineFormerBlock3d"]


class RefineFormerBlock3d(nn.Module):
    """
    One pre-norm transformer block of RefineFormer3D's hierarchical encoder:
    ``x = x + Attn(LN(x))`` with spatial-reduction self-attention, then ``x = x + MixFFN3D(LN(x))``.

    Args:
        channels: token width ``C``.
        num_heads: number of attention heads.
        reduction_ratio: spatial reduction ratio of the keys and values.
        mlp_ratio: MixFFN3D hidden width as a multiple of ``C``.
        rank: rank of the MixFFN3D projections.
    """

    def __init__(self, channels: int, num_heads: int, reduction_ratio: int, mlp_ratio: int, rank: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.attention = EfficientAttention3d(channels, num_heads, reduction_ratio)
        self.norm2 = nn.LayerNorm(channels)
        self.ffn = MixFFN3d(channels, mlp_ratio, rank)

    def forward(self, x: torch.Tensor, spatial: list[int]) -> torch.Tensor:
        """(B, N, C) tokens of a (D, H, W) = ``spatial`` volume -> (B, N, C)."""
        normed = self.norm1(x)
        x = x + self.attention(normed, to_volume(normed, spatial))
        return x + self.ffn(self.norm2(x), spatial)
