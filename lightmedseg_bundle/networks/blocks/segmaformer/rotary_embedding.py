from __future__ import annotations

import torch
from torch import nn

__all__ = ["RotaryEmbedding3d"]


class RotaryEmbedding3d(nn.Module):
    """
    Rotary position embedding generalised to a 3D token grid (axial RoPE; Su et al., RoFormer,
    `arXiv:2104.09864 <https://arxiv.org/abs/2104.09864>`_, Eq. 34, extended to N-D as in Heo et al.,
    `arXiv:2403.13298 <https://arxiv.org/abs/2403.13298>`_). The ``head_dim / 2`` rotation planes of a head are
    shared out between the depth, height and width axes as evenly as possible (the first axes get one more plane
    when ``head_dim / 2`` is not a multiple of 3); the planes of axis ``a`` rotate by ``p_a * theta_i`` with
    ``p_a`` the token's integer grid index along ``a`` and ``theta_i = base^(-i / n_a)``, i = 0..n_a-1. Rotating
    queries and keys this way makes their dot product depend on the relative offset of the two tokens only.

    Args:
        head_dim: channels per attention head; even and at least 6.
        base: frequency base. Defaults to 100, suited to grids of a few to a few tens of tokens per axis.
    """

    def __init__(self, head_dim: int, base: float = 100.0):
        super().__init__()
        if head_dim % 2 != 0 or head_dim < 6:
            raise ValueError(f"3D RoPE needs an even head dimension of at least 6 (a plane per axis), got {head_dim}.")
        planes = head_dim // 2
        inv_freq: list[torch.Tensor] = []
        axis: list[torch.Tensor] = []
        for a in range(3):
            count = planes // 3 + (1 if a < planes % 3 else 0)
            inv_freq.append(base ** (-torch.arange(count, dtype=torch.float32) / count))
            axis.append(torch.full((count,), a, dtype=torch.long))
        self.register_buffer("inv_freq", torch.cat(inv_freq), persistent=False)  # (head_dim / 2,)
        self.register_buffer("axis", torch.cat(axis), persistent=False)  # (head_dim / 2,) axis of each plane

    def angles(self, grid: list[int]) -> torch.Tensor:
        """Rotation angles of every token of a (D, H, W) grid in raster order, shape (D * H * W, head_dim / 2)."""
        coords = torch.meshgrid(
            [torch.arange(n, device=self.inv_freq.device, dtype=self.inv_freq.dtype) for n in grid], indexing="ij"
        )
        positions = torch.stack([c.reshape(-1) for c in coords], dim=1)  # (N, 3)
        return positions[:, self.axis] * self.inv_freq  # (N, head_dim / 2)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """
        Args:
            x: queries or keys, shape (B, heads, N, head_dim), tokens in raster order of ``grid``.
            grid: token grid (D, H, W) with D * H * W = N.

        Returns:
            the rotated tensor, shape (B, heads, N, head_dim).
        """
        angles = self.angles(grid).to(x.dtype)
        cos, sin = torch.cos(angles), torch.sin(angles)
        x1, x2 = x.chunk(2, dim=-1)  # the two coordinates of every rotation plane
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
