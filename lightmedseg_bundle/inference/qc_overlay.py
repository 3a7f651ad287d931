"""QC figure: the three orthogonal slices through the largest predicted component, with the prediction overlaid."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from monai.data import MetaTensor
from monai.transforms import Orientation

from ..visualize import LABEL_COLOURS
from .qc_metrics import largest_component

__all__ = ["save_qc_overlay"]


def _label_map(masks: Sequence[np.ndarray]) -> np.ndarray:
    labels = np.zeros(masks[0].shape, dtype=np.int64)
    for index, mask in enumerate(masks):
        labels[mask] = index + 1  # later regions drawn on top
    return labels


def save_qc_overlay(
    image: MetaTensor, masks: dict[str, np.ndarray], output_png: str | os.PathLike, title: str = ""
) -> Path:
    """
    Save a PNG of the sagittal, coronal and axial slices (after reorienting to RAS for display) through the
    centre of the largest connected component of the predicted foreground, with the regions overlaid; through the
    centre of the volume when the prediction is empty.

    Args:
        image: the input image in its own geometry, channel first (the first channel is shown).
        masks: the predicted regions by name, on ``image``'s grid (see :func:`region_masks`).
        output_png: the PNG file to write (its folder is created).
        title: figure title, e.g. the case name.
    """
    names = list(masks)
    labels = MetaTensor(_label_map(list(masks.values()))[None], affine=image.affine)
    orient = Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    volume = np.asarray(orient(image[:1].float()).detach().cpu())[0]
    labels = np.asarray(orient(labels).detach().cpu())[0].astype(np.int64)
    spacing = np.sqrt((np.asarray(orient(image[:1]).affine)[:3, :3] ** 2).sum(axis=0))

    component = largest_component(labels > 0)
    if component.any():
        voxels = np.argwhere(component)
        centre = voxels[np.argmin(((voxels - voxels.mean(axis=0)) ** 2).sum(axis=1))]
        where = "largest component"
    else:
        centre = np.asarray(volume.shape) // 2
        where = "empty prediction: volume centre"
    x, y, z = (int(v) for v in centre)
    views = [  # (name, image slice, label slice, vertical spacing / horizontal spacing)
        (f"sagittal x={x}", volume[x, :, :].T, labels[x, :, :].T, spacing[2] / spacing[1]),
        (f"coronal y={y}", volume[:, y, :].T, labels[:, y, :].T, spacing[2] / spacing[0]),
        (f"axial z={z}", volume[:, :, z].T, labels[:, :, z].T, spacing[1] / spacing[0]),
    ]
    low, high = np.percentile(volume, [1, 99])
    colours = ListedColormap([LABEL_COLOURS[i % len(LABEL_COLOURS)] for i in range(max(len(names), 1))])
    figure = Figure(figsize=(9, 3.6))
    axes = figure.subplots(1, 3, squeeze=False)[0]
    for axis, (name, picture, overlay, aspect) in zip(axes, views, strict=True):
        axis.imshow(picture, cmap="gray", vmin=low, vmax=high, origin="lower", aspect=aspect)
        axis.imshow(
            np.ma.masked_equal(overlay, 0), cmap=colours, vmin=0.5, vmax=max(len(names), 1) + 0.5,
            alpha=0.5, origin="lower", aspect=aspect, interpolation="nearest",
        )  # fmt: skip
        axis.set_title(name, fontsize=9)
        axis.axis("off")
    handles = [Patch(color=LABEL_COLOURS[i % len(LABEL_COLOURS)], label=n) for i, n in enumerate(names)]
    figure.legend(handles=handles, loc="lower center", ncol=max(len(handles), 1), fontsize=8, frameon=False)
    figure.suptitle(f"{title} ({where})", fontsize=9)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    output_png = Path(output_png)
    output_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_png, dpi=100)
    return output_png
