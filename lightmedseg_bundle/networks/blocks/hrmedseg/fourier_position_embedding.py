from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FourierPositionEmbedding3d"]


class FourierPositionEmbedding3d(nn.Module):
    """
    SAM's dense positional encoding (random Fourier features, Tancik et al., arXiv:2006.10739) over a 3D grid,
    which HRMedSeg's mask decoder adds to the image tokens: ``[sin(2 pi c G), cos(2 pi c G)]`` with ``c`` the
    voxel centre mapped to ``[-1, 1]^3`` and ``G`` a fixed (3, C/2) Gaussian matrix drawn at construction and
    stored in the state dict.

    Args:
        channels: embedding width ``C``; must be even.
        scale: standard deviation of ``G``. Defaults to 1.0.
    """

    def __init__(self, channels: int, scale: float = 1.0):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"`channels` must be even (sine and cosine halves), got {channels}.")
        self.register_buffer("gaussian", scale * torch.randn(3, channels // 2))

    def forward(self, grid: list[int]) -> torch.Tensor:
        """The encoding (N, C) of the N = D*H*W voxels of ``grid = [D, H, W]`` in raster order."""
        axes = [
            (torch.arange(size, device=self.gaussian.device, dtype=self.gaussian.dtype) + 0.5) / size * 2 - 1
            for size in grid
        ]
        coords = torch.stack([c.reshape(-1) for c in torch.meshgrid(axes, indexing="ij")], dim=1)  # (N, 3)
        phase = 2 * math.pi * coords @ self.gaussian  # (N, C/2)
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=1)
