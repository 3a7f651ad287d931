from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..rotary_embedding import RotaryEmbedding3d

__all__ = ["LinearAttention3d"]


class LinearAttention3d(nn.Module):
    """
    LGViT's linear attention over the N = D*H*W tokens of a 3D grid, per head::

        q = elu(W_q x) + 1,   k = elu(W_k x) + 1,   v = W_2 SiLU(W_1 x)      (W_1: C -> C/4, W_2: C/4 -> C)
        y_n = R(q_n) . (1/N sum_m R(k_m)^T v_m) / (q_n . 1/N sum_m k_m)  +  LePE(v)_n

    with ``R`` the rotary position embedding and ``LePE`` a 3x3x3 depthwise convolution of ``v`` (locally enhanced
    positional encoding). The key-value summary is a (C/h x C/h) matrix per head, so time and memory grow linearly
    with N; no N x N attention map is formed.

    Args:
        channels: number of channels ``C``.
        num_heads: number of heads ``h``; must divide ``C`` into even head widths.
        qkv_bias: whether the query/key projection has a bias. Defaults to True.
    """

    def __init__(self, channels: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if channels % num_heads != 0 or (channels // num_heads) % 2 != 0:
            raise ValueError(
                f"`num_heads` ({num_heads}) must split the {channels} channels into heads of an even width (RoPE)."
            )
        self.num_heads = num_heads
        self.query_key = nn.Linear(channels, 2 * channels, bias=qkv_bias)
        self.value = nn.Sequential(
            nn.Linear(channels, max(1, channels // 4)), nn.SiLU(), nn.Linear(max(1, channels // 4), channels)
        )
        self.rope = RotaryEmbedding3d(channels)
        self.lepe = nn.Conv3d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """Maps tokens ``x`` (B, N, C) of a ``grid = [D, H, W]`` (raster order, N = D*H*W) to (B, N, C)."""
        b, n, c = x.shape
        heads, head_dim = self.num_heads, c // self.num_heads
        q, k = (F.elu(t) + 1.0 for t in self.query_key(x).chunk(2, dim=-1))  # (B, N, C) each, positive
        v = self.value(x)  # (B, N, C)
        angles = self.rope.angles(grid)
        q_rot = self.rope(q, angles).view(b, n, heads, head_dim).transpose(1, 2)  # (B, h, N, C/h)
        k_rot = self.rope(k, angles).view(b, n, heads, head_dim).transpose(1, 2)
        q = q.view(b, n, heads, head_dim).transpose(1, 2)
        k = k.view(b, n, heads, head_dim).transpose(1, 2)
        v_heads = v.view(b, n, heads, head_dim).transpose(1, 2)

        normaliser = 1.0 / (q @ k.mean(dim=2, keepdim=True).transpose(-2, -1) + 1e-6)  # (B, h, N, 1)
        summary = (k_rot.transpose(-2, -1) @ v_heads) / n  # (B, h, C/h, C/h)
        out = (q_rot @ summary) * normaliser  # (B, h, N, C/h)
        out = out.transpose(1, 2).reshape(b, n, c)

        v_grid = v.transpose(1, 2).reshape(b, c, grid[0], grid[1], grid[2])  # (B, C, D, H, W)
        return out + self.lepe(v_grid).flatten(2).transpose(1, 2)
