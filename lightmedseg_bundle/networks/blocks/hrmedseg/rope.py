from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RotaryPositionEmbedding3d"]


class RotaryPositionEmbedding3d(nn.Module):
    """
    Rotary position embedding (RoPE, Su et al., arXiv:2104.09864) over a 3D token grid, as LGViT's linear attention
    applies it to its queries and keys. The ``C / 2`` channel pairs rotate by ``p_a * theta_j``: pair ``i`` follows
    axis ``a = i mod 3`` of the token's integer grid position ``p = (d, h, w)`` at frequency
    ``theta_j = base^(-j / J)``, ``j = i div 3``, ``J = ceil(C / 6)``. Interleaving the axes (the 2D code gives each
    axis a contiguous block of channels) lets every attention head see all three axes.

    Args:
        channels: number of channels ``C``; must be even.
        base: frequency base. Defaults to 10000.
    """

    def __init__(self, channels: int, base: float = 10000.0):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"RoPE rotates channel pairs, so `channels` must be even, got {channels}.")
        pairs = torch.arange(channels // 2)
        num_frequencies = math.ceil(channels / 6)
        self.register_buffer("axis", pairs % 3, persistent=False)  # (C/2,)
        self.register_buffer("theta", base ** (-(pairs // 3).float() / num_frequencies), persistent=False)  # (C/2,)

    def angles(self, grid: list[int]) -> torch.Tensor:
        """The rotation angles (N, C/2) of the N = D*H*W tokens of a ``grid = [D, H, W]``, in raster order."""
        coords = torch.meshgrid(
            [torch.arange(size, device=self.theta.device, dtype=self.theta.dtype) for size in grid], indexing="ij"
        )
        positions = torch.stack([c.reshape(-1) for c in coords], dim=1)  # (N, 3)
        return positions[:, self.axis] * self.theta  # (N, C/2)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Rotates ``x`` (B, N, C) by ``angles`` (N, C/2) from :meth:`angles`."""
        b, n, c = x.shape
        pairs = x.reshape(b, n, c // 2, 2)
        real, imag = pairs[..., 0], pairs[..., 1]  # (B, N, C/2)
        cos, sin = torch.cos(angles), torch.sin(angles)
        return torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).reshape(b, n, c)
