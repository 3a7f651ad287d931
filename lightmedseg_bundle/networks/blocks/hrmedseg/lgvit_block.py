from __future__ import annotations

import torch
from monai.networks.blocks import MLPBlock
from monai.networks.layers import DropPath
from torch import nn

from .linear_attention import LinearAttention3d

__all__ = ["LGViTBlock"]


class LGViTBlock(nn.Module):
    """
    The lightweight gated transformer block of LGViT: gated linear attention, then an MLP, both pre-norm residual::

        x = x + W_o (LinAttn(LN(x)) * SiLU(W_g LN(x)))
        x = x + MLP(LN(x))

    Args:
        channels: number of channels ``C``.
        num_heads: number of attention heads.
        mlp_ratio: hidden width of the MLP relative to ``C``.
        act: activation of the MLP.
        drop_path: stochastic-depth probability of both residual branches.
    """

    def __init__(self, channels: int, num_heads: int, mlp_ratio: float, act: tuple | str, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.gate = nn.Sequential(nn.Linear(channels, channels), nn.SiLU())
        self.attn = LinearAttention3d(channels, num_heads)
        self.out_proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = MLPBlock(channels, int(channels * mlp_ratio), act=act)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """Maps tokens ``x`` (B, N, C) of a ``grid = [D, H, W]`` (raster order) to (B, N, C)."""
        y = self.norm1(x)
        x = x + self.drop_path(self.out_proj(self.attn(y, grid) * self.gate(y)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
