from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..rotary_embedding import RotaryEmbedding3d

__all__ = ["RoPESelfAttention"]


class RoPESelfAttention(nn.Module):
    """
    Multi-head self-attention over all tokens of a stage, with :class:`RotaryEmbedding3d` applied to queries and
    keys: SegMaFormer's token mixer in the late, low-resolution encoder stages.

    Args:
        channels: token width ``C``.
        num_heads: number of heads; must divide ``channels``.
        rope_base: frequency base of the rotary embedding. Defaults to 100.
        dropout: attention dropout probability. Defaults to 0.0.
    """

    def __init__(self, channels: int, num_heads: int, rope_base: float = 100.0, dropout: float = 0.0):
        super().__init__()
        if num_heads < 1 or channels % num_heads != 0:
            raise ValueError(f"`num_heads` must divide the stage width {channels}, got {num_heads}.")
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(channels, 3 * channels)
        self.rope = RotaryEmbedding3d(channels // num_heads, rope_base)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """
        Args:
            x: tokens, shape (B, N, C), raster order of ``grid``.
            grid: token grid (D, H, W).

        Returns:
            shape (B, N, C).
        """
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, head_dim)
        angles = self.rope.angles(grid)  # (N, head_dim / 2)
        q, k = self.rope(q, angles), self.rope(k, angles)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
