from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["RotaryEmbedding3d"]


class RotaryEmbedding3d(nn.Module):
    """
    Rotary position embedding over a 3D token grid (axial RoPE: Su et al., RoFormer,
    `arXiv:2104.09864 <https://arxiv.org/abs/2104.09864>`_, extended to N-D as in Heo et al.,
    `arXiv:2403.13298 <https://arxiv.org/abs/2403.13298>`_), applied to queries and keys so that their dot product
    depends on the two tokens' relative offset only. Channels ``(2i, 2i + 1)`` form rotation plane ``i``; plane ``i``
    follows axis ``a = i mod 3`` of the token's integer grid position ``p = (d, h, w)`` and rotates by
    ``p_a * base^(-j / J)`` with ``j = i div 3`` and ``J = ceil(dim / 6)``. Interleaving the axes gives every block
    of consecutive planes (every attention head, when the embedding spans several heads) all three axes.
    SegMaFormer applies it per head, HRMedSeg's linear attention across all channels before the head split.

    Args:
        dim: channels rotated, the last axis of the input; even and at least 6 (a plane per axis).
        base: frequency base. Defaults to 10000 (RoFormer's); SegMaFormer's small grids use 100.
    """

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        if dim % 2 != 0 or dim < 6:
            raise ValueError(f"3D RoPE needs an even number of channels, at least 6 (a plane per axis), got {dim}.")
        planes = torch.arange(dim // 2)
        self.register_buffer("axis", planes % 3, persistent=False)  # (dim/2,) axis of each plane
        self.register_buffer(
            "theta", base ** (-(planes // 3).float() / math.ceil(dim / 6)), persistent=False
        )  # (dim/2,) frequency of each plane

    def angles(self, grid: list[int]) -> torch.Tensor:
        """The rotation angles (N, dim/2) of the N = D*H*W tokens of a ``grid = [D, H, W]``, in raster order."""
        coords = torch.meshgrid(
            [torch.arange(size, device=self.theta.device, dtype=self.theta.dtype) for size in grid], indexing="ij"
        )
        positions = torch.stack([c.reshape(-1) for c in coords], dim=1)  # (N, 3)
        return positions[:, self.axis] * self.theta  # (N, dim/2)

    def forward(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Rotates ``x`` (..., N, dim), tokens in raster order, by ``angles`` (N, dim/2) from :meth:`angles`."""
        pairs = x.reshape(x.shape[:-1] + (x.shape[-1] // 2, 2))
        real, imag = pairs[..., 0], pairs[..., 1]  # (..., N, dim/2)
        cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
        return torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).reshape(x.shape)
