from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from lightmedseg_bundle.visualize import LABEL_COLOURS, save_overlay_png


def _write(path: Path, array: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    return path


@pytest.fixture
def case(tmp_path) -> dict:
    image = np.random.default_rng(0).normal(size=(16, 20, 24)).astype(np.float32)
    label = np.zeros((16, 20, 24), dtype=np.uint8)
    label[4:10, 5:12, 3:5] = 1  # foreground on 2 of 24 axial slices only
    label[4:10, 12:16, 3:5] = 2
    return {
        "image": _write(tmp_path / "image.nii.gz", image),
        "label": _write(tmp_path / "label.nii.gz", label),
        "pred": _write(tmp_path / "pred.nii.gz", np.roll(label, 1, axis=0)),
    }


def _has_colour(png: np.ndarray, colour: str) -> bool:
    """Whether some pixel is tinted towards ``colour`` (overlays are drawn at 50% opacity)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    dominant = int(np.argmax(rgb))
    others = [c for c in range(3) if c != dominant]
    return bool(np.any(png[..., dominant] - png[..., others].max(axis=-1) > 0.15))


def test_writes_a_png_with_slices_through_the_foreground(case, tmp_path):
    output = save_overlay_png(case["image"], case["label"], case["pred"], tmp_path / "figures" / "case.png")
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = matplotlib.image.imread(output)
    assert png.shape[:2] == (2 * 300, 3 * 300)  # 2 foreground slices (< num_slices=3) x 3 panels
    assert _has_colour(png, LABEL_COLOURS[0]) and _has_colour(png, LABEL_COLOURS[1])


def test_without_reference_label_and_with_multichannel_prediction(case, tmp_path):
    regions = np.stack([nib.load(case["label"]).get_fdata() > 0] * 3, axis=-1).astype(np.uint8)
    pred = _write(tmp_path / "regions.nii.gz", regions)
    png = matplotlib.image.imread(save_overlay_png(case["image"], None, pred, tmp_path / "case.png", num_slices=1))
    assert png.shape[:2] == (300, 2 * 300)
    assert _has_colour(png, LABEL_COLOURS[2])  # the last channel is drawn on top


def test_empty_prediction_still_gives_a_figure(case, tmp_path):
    empty = _write(tmp_path / "empty.nii.gz", np.zeros((16, 20, 24), dtype=np.uint8))
    png = matplotlib.image.imread(save_overlay_png(case["image"], None, empty, tmp_path / "case.png"))
    assert png.shape[:2] == (3 * 300, 2 * 300)
    assert not _has_colour(png, LABEL_COLOURS[0])


def test_mismatched_shapes_raise(case, tmp_path):
    other = _write(tmp_path / "other.nii.gz", np.zeros((16, 20, 23), dtype=np.uint8))
    with pytest.raises(ValueError, match="share one spatial shape"):
        save_overlay_png(case["image"], case["label"], other, tmp_path / "case.png")
