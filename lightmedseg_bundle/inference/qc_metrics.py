"""Per-case quality-control measurements: volumes, connected components, intensity checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "region_masks",
    "voxel_volume_ml",
    "region_statistics",
    "largest_component",
    "intensity_statistics",
    "intensity_flags",
]

#: 26-connectivity: voxels sharing a face, an edge or a corner belong to the same component
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def region_masks(
    pred: torch.Tensor | np.ndarray, names: Sequence[str], activation: str = "softmax"
) -> dict[str, np.ndarray]:
    """
    Boolean masks of the predicted regions, by name.

    Args:
        pred: the saved prediction, channel first: (1, X, Y, Z) labels ``0..N`` for ``"softmax"`` (label ``i`` is
            ``names[i - 1]``), or (N, X, Y, Z) binary regions for ``"sigmoid"`` (channel ``c`` is ``names[c]``).
        names: the N foreground names.
        activation: ``"softmax"`` (exclusive labels) or ``"sigmoid"`` (overlapping regions).
    """
    array = np.asarray(torch.as_tensor(pred).detach().cpu())
    if activation == "softmax":
        labels = np.rint(array[0]).astype(np.int64)
        return {name: labels == index + 1 for index, name in enumerate(names)}
    if array.shape[0] != len(names):
        raise ValueError(f"{array.shape[0]} region channels but {len(names)} names: {list(names)}")
    return {name: array[index] > 0.5 for index, name in enumerate(names)}


def voxel_volume_ml(affine: torch.Tensor | np.ndarray) -> float:
    """Volume of one voxel in mL from a 4x4 affine in mm (the absolute determinant of its 3x3 part / 1000)."""
    matrix = np.asarray(torch.as_tensor(affine).detach().cpu().double())[:3, :3]
    return abs(float(np.linalg.det(matrix))) / 1000.0


def region_statistics(mask: np.ndarray, voxel_ml: float) -> dict[str, float | int]:
    """Voxel count, volume (mL), number of 26-connected components and the volume of the largest of them."""
    components, count = ndimage.label(mask, structure=CONNECTIVITY)
    sizes = np.bincount(components.ravel())[1:] if count else np.zeros(0, dtype=np.int64)
    voxels = int(mask.sum())
    return {
        "voxels": voxels,
        "volume_ml": voxels * voxel_ml,
        "components": int(count),
        "largest_component_ml": (int(sizes.max()) if count else 0) * voxel_ml,
    }


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of ``mask`` (all False when ``mask`` is empty)."""
    components, count = ndimage.label(mask, structure=CONNECTIVITY)
    if not count:
        return np.zeros_like(mask, dtype=bool)
    return components == (np.argmax(np.bincount(components.ravel())[1:]) + 1)


def intensity_statistics(image: torch.Tensor | np.ndarray) -> list[dict[str, float]]:
    """Per channel of a channel-first image: min, max, 0.5th and 99.5th percentiles, mean, standard deviation."""
    array = np.asarray(torch.as_tensor(image).detach().cpu().double())
    stats = []
    for channel in array.reshape(array.shape[0], -1):
        low, high = np.percentile(channel, [0.5, 99.5])
        stats.append(
            {
                "min": float(channel.min()),
                "max": float(channel.max()),
                "p0_5": float(low),
                "p99_5": float(high),
                "mean": float(channel.mean()),
                "std": float(channel.std()),
            }
        )
    return stats


def intensity_flags(
    raw: torch.Tensor | np.ndarray,
    intensity_range: Sequence[float] | None = None,
    outlier_iqr_factor: float = 6.0,
    max_outlier_fraction: float = 0.01,
) -> list[str]:
    """
    Intensity problems of a case (channel-first raw image, in its own units), as short flags:

    - ``constant_intensity``: a channel has a single value;
    - ``intensity_out_of_range``: with ``intensity_range`` ``[low, high]``, more than ``max_outlier_fraction`` of
      the voxels of a channel lie outside it;
    - ``intensity_outliers``: more than ``max_outlier_fraction`` of the voxels of a channel that are above the
      channel's minimum (the background of skull-stripped or cropped images sits at the minimum) lie more than
      ``outlier_iqr_factor`` interquartile ranges below the first or above the third quartile: spikes, metal, a
      wrong modality or scaling. Robust statistics, so that the outliers cannot hide by inflating the spread.
      With the defaults (6 and 1 %) no case of the 173 MSD hippocampus or 6 BraTS 2015 training images is flagged
      (worst: 0.012 % and 0.26 % of their voxels).
    """
    raw = np.asarray(torch.as_tensor(raw).detach().cpu().double())
    flags = []
    channels = raw.reshape(raw.shape[0], -1)
    if any(float(c.min()) == float(c.max()) for c in channels):
        flags.append("constant_intensity")
    if intensity_range is not None:
        low, high = (float(v) for v in intensity_range)
        if any(float(((c < low) | (c > high)).mean()) > max_outlier_fraction for c in channels):
            flags.append("intensity_out_of_range")
    for channel in channels:
        values = channel[channel > channel.min()]
        if values.size == 0:
            continue
        q1, q3 = np.percentile(values, [25, 75])
        spread = float(outlier_iqr_factor) * (q3 - q1)
        if float(((values < q1 - spread) | (values > q3 + spread)).mean()) > max_outlier_fraction:
            flags.append("intensity_outliers")
            break
    return flags
