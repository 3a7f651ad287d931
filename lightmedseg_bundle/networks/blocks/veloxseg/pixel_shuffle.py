from __future__ import annotations

import torch
from torch import nn

__all__ = ["PixelShuffle3d"]


class PixelShuffle3d(nn.Module):
    """
    3D pixel shuffle (depth-to-space): (B, C * s^3, D, H, W) -> (B, C, s D, s H, s W). VeloxSeg's head predicts the
    ``s^3`` sub-voxels of every stem position as channels and rearranges them to the input resolution.

    Args:
        scale: upscaling factor ``s`` along every axis.
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale
        b, c, d, h, w = x.shape
        x = x.reshape(b, c // s**3, s, s, s, d, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(b, c // s**3, d * s, h * s, w * s)
