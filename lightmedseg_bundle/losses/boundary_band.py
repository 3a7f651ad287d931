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
    Maximum over the (2 radius + 1)^n box around each voxel, clipped at the border, as one 1D max-pool per spatial
    axis: the same result as an n-D max-pool, with 3(2r + 1) instead of (2r + 1)^3 comparisons per voxel in 3D.
    """
    spatial_dims = x.ndim - 2
    max_pool = F.max_pool3d if spatial_dims == 3 else F.max_pool2d
    for axis in range(spatial_dims):
        kernel = [1] * spatial_dims
        padding = [0] * spatial_dims
        kernel[axis], padding[axis] = 2 * radius + 1, radius
        x = max_pool(x, kernel_size=kernel, stride=1, padding=padding)
    return x
