"""PNG figures of segmentation results: axial slices of an image with its reference and predicted labels."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

#: overlay colours of labels 1, 2, 3, ... (label 0 is left transparent)
LABEL_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45")


def save_overlay_png(
    image_path: str | os.PathLike,
    label_path: str | os.PathLike | None,
    pred_path: str | os.PathLike,
    output_png: str | os.PathLike,
    num_slices: int = 3,
) -> Path:
    """
    Save a PNG with a few axial slices through the foreground of a case: one row per slice, with columns for the
    image, the image with the reference label overlaid (when ``label_path`` is given) and the image with the
    prediction overlaid. Slices are spread evenly over the axial slices holding foreground in the label or the
    prediction, or over the whole volume when both are empty.

    The files are read with nibabel and must share one voxel grid. A 4D image shows its first channel; a 4D label
    or prediction with several channels (e.g. the TC / WT / ET regions of a sigmoid model) is drawn as the label
    ``c + 1`` wherever channel ``c`` is set, later channels on top.

    Usable from a bundle config, e.g. as an expression after inference::

        "$lightmedseg_bundle.visualize.save_overlay_png(@image_file, None, @pred_file, @output_dir + '/case.png')"

    Args:
        image_path: image file.
        label_path: reference label file, or None to show the prediction only.
        pred_path: predicted label file.
        output_png: PNG file to write; its directory is created if missing.
        num_slices: number of axial slices to show.

    Returns:
        the path of the written PNG.

    Raises:
        ValueError: when the files do not share one spatial shape.
    """
    image = np.asarray(nib.load(image_path).dataobj, dtype=np.float32)
    image = image[..., 0] if image.ndim == 4 else image
    pred = _label_map(pred_path)
    label = None if label_path is None else _label_map(label_path)
    shapes = {"image": image.shape, "prediction": pred.shape} | ({} if label is None else {"label": label.shape})
    if len(set(shapes.values())) != 1:
        raise ValueError(f"image, label and prediction must share one spatial shape, got {shapes}.")

    foreground = pred > 0 if label is None else (pred > 0) | (label > 0)
    candidates = np.flatnonzero(foreground.any(axis=(0, 1)))
    if candidates.size == 0:
        candidates = np.arange(image.shape[2])
    positions = np.linspace(0, candidates.size - 1, num_slices + 2)[1:-1].round().astype(int)
    slices = candidates[np.unique(positions)]

    panels = [("image", None)] + ([] if label is None else [("reference", label)]) + [("prediction", pred)]
    low, high = np.percentile(image, [1, 99])
    num_labels = int(max(pred.max(), 0 if label is None else label.max()))
    colours = ListedColormap([LABEL_COLOURS[i % len(LABEL_COLOURS)] for i in range(max(num_labels, 1))])
    figure = Figure(figsize=(3 * len(panels), 3 * len(slices)))
    axes = figure.subplots(len(slices), len(panels), squeeze=False)
    for row, z in enumerate(slices):
        for column, (title, overlay) in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(image[:, :, z].T, cmap="gray", vmin=low, vmax=high, origin="lower")
            if overlay is not None:
                labels = np.ma.masked_equal(overlay[:, :, z].T, 0)
                axis.imshow(labels, cmap=colours, vmin=0.5, vmax=max(num_labels, 1) + 0.5, alpha=0.5, origin="lower")
            axis.set_title(f"{title}, z={z}", fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    output_png = Path(output_png)
    output_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_png, dpi=100)
    return output_png


def _label_map(path: str | os.PathLike) -> np.ndarray:
    """Read a label map; a multi-channel 4D file becomes ``c + 1`` wherever channel ``c`` is set."""
    data = np.asarray(nib.load(path).dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        channels = np.moveaxis(data > 0.5, -1, 0)
        data = np.zeros(data.shape[:3], dtype=np.int64)
        for index, channel in enumerate(channels):
            data[channel] = index + 1
    return np.rint(data).astype(np.int64)
