"""Inverse voxel-frequency class weights used by :py:class:`LightMedSegLoss`."""

from __future__ import annotations

import torch


def inverse_frequency_weights(target: torch.Tensor) -> torch.Tensor:
    """
    Compute the LightMedSeg class weights ``w_c = |Ω| / (N_cls · Σ_r y_{c,r})`` from a one-hot (or multi-hot)
    target, pooling the voxel counts over the whole batch.

    A class absent from the batch would get an infinite weight. As in :py:class:`monai.losses.GeneralizedDiceLoss`,
    it gets the largest weight of the present classes instead; when no class is present at all every weight is 1.

    Args:
        target: one-hot or multi-hot ground truth of shape (B, N, spatial...).

    Returns:
        a tensor of N positive, finite weights on the device and with the dtype of ``target``.
    """
    num_classes = target.shape[1]
    num_voxels = target[:, 0].numel()
    counts = target.sum(dim=[d for d in range(target.ndim) if d != 1])
    present = counts > 0
    if not present.any():
        return torch.ones_like(counts)
    weights = torch.empty_like(counts)
    weights[present] = num_voxels / (num_classes * counts[present])
    weights[~present] = weights[present].max()
    return weights
