"""The class-boundary band that restricts the boundary term of :py:class:`LightMedSegLoss`."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def boundary_band(target: torch.Tensor, dilation: int = 3) -> torch.Tensor:
    """
    Mark the voxels within ``dilation`` voxels (ℓ∞ distance) of a class boundary.

    A voxel lies on a class boundary when its 3x3(x3) neighbourhood, clipped at the image border, holds another
    label, that is, when some channel of ``target`` is not constant over that neighbourhood. The boundary is then
    dilated by a max-pool with kernel ``2 * dilation + 1``.

    Args:
        target: one-hot or multi-hot ground truth of shape (B, N, H, W) or (B, N, H, W, D).
        dilation: radius of the ℓ∞ ball the boundary is dilated with; 0 keeps the boundary voxels only.

    Returns:
        a boolean mask of shape (B, 1, spatial...), all False where the target has no boundary.

    Raises:
        ValueError: when ``target`` is neither 2D nor 3D, or ``dilation`` is negative.
    """
    pools = {4: F.max_pool2d, 5: F.max_pool3d}
    if target.ndim not in pools:
        raise ValueError(f"target must have shape (B, N, H, W) or (B, N, H, W, D), got {tuple(target.shape)}.")
    if dilation < 0:
        raise ValueError(f"dilation must be non-negative, got {dilation}.")
    max_pool = pools[target.ndim]
    target = target.float()
    local_max = max_pool(target, kernel_size=3, stride=1, padding=1)
    local_min = -max_pool(-target, kernel_size=3, stride=1, padding=1)
    boundary = (local_max != local_min).any(dim=1, keepdim=True)
    if dilation == 0:
        return boundary
    return max_pool(boundary.float(), kernel_size=2 * dilation + 1, stride=1, padding=dilation) > 0
