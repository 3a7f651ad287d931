"""From the network's input grid back to the input image: physical coordinates and inverted preprocessing.

The inference preprocessing (``configs/inference.json``) reorients each image to RAS and pads it to a multiple
of 16; MONAI tracks both in the preprocessed ``MetaTensor``: its ``affine`` maps a voxel index of the padded,
reoriented network input to the physical (world) position of that voxel, and its ``applied_operations`` let
``Invertd`` undo the preprocessing on any tensor of the same grid.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd, InvertibleTransform
from monai.utils import SpaceKeys

__all__ = ["normalised_to_world", "ras_to_lps", "invert_to_input"]


def normalised_to_world(points: torch.Tensor | np.ndarray, image: MetaTensor) -> np.ndarray:
    """
    Physical RAS coordinates (mm) of points given in LightMedSeg's normalised anchor convention on ``image``.

    A point ``(s_d, s_h, s_w)`` in ``[0, 1]^3`` is the voxel index ``(s_d D, s_h H, s_w W)`` of the network input
    of spatial size ``(D, H, W)`` (the convention of the decoder's position bias, ``d / D - s_d``); that index goes
    through ``image.affine``. Because MONAI updates the affine with every spatial preprocessing step (orientation,
    padding), this lands in the physical space of the original image, whatever its orientation or padding.

    Args:
        points: (K, 3) normalised coordinates along the three spatial axes of ``image``.
        image: the preprocessed network input, (C, D, H, W), with its affine.

    Returns:
        (K, 3) float64 RAS coordinates in the units of the affine (mm).
    """
    points = np.asarray(torch.as_tensor(points).detach().cpu().double())
    index = points * np.asarray(image.shape[1:], dtype=np.float64)
    affine = np.asarray(torch.as_tensor(image.affine).detach().cpu().double())
    world = index @ affine[:3, :3].T + affine[:3, 3]
    if image.meta.get("space", SpaceKeys.RAS) == SpaceKeys.LPS:
        world = ras_to_lps(world)  # the same flip turns LPS into RAS
    return world


def ras_to_lps(points: np.ndarray) -> np.ndarray:
    """Flip the first two axes of (K, 3) points: RAS <-> LPS (DICOM and 3D Slicer's file convention)."""
    points = np.array(points, dtype=np.float64, copy=True)
    points[..., :2] *= -1.0
    return points


def invert_to_input(
    data: torch.Tensor,
    image: MetaTensor,
    transform: InvertibleTransform,
    image_key: Hashable = "image",
    nearest_interp: bool = False,
) -> MetaTensor:
    """
    Undo the preprocessing ``transform`` that produced ``image`` on ``data``, a tensor on ``image``'s grid.

    Args:
        data: (C, D, H, W) tensor on the grid of the preprocessed ``image``.
        image: the preprocessed network input, with the ``applied_operations`` of ``transform``.
        transform: the preprocessing (e.g. the config's ``preprocessing`` ``Compose``).
        image_key: the key ``transform`` was applied to.
        nearest_interp: invert resampling steps with nearest-neighbour interpolation (for label maps).

    Returns:
        ``data`` in the input image's geometry: its shape, orientation and affine, with its metadata.
    """
    inverter = Invertd(
        keys="data", transform=transform, orig_keys=image_key, nearest_interp=nearest_interp, to_tensor=True
    )
    data = MetaTensor(data.as_tensor() if isinstance(data, MetaTensor) else data)
    return inverter({"data": data, image_key: image})["data"]
