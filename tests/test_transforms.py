from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from lightmedseg_bundle.transforms import ConvertBratsLabelsToRegions, ConvertBratsLabelsToRegionsd, ValidateSampled

DATA = Path("/work/shared/data")
HIPPOCAMPUS_CASE = "hippocampus_001.nii.gz"
BRATS_LABEL = DATA / "brats2015_deepmedic_2ch" / "labelsTr" / "brats_2013_pat0006_1.nii.gz"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not available")

load = Compose([LoadImaged(keys=["image", "label"]), EnsureChannelFirstd(keys=["image", "label"])])


def _write(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> str:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return str(path)


def _load_pair(tmp_path: Path, image: np.ndarray, label: np.ndarray, label_affine: np.ndarray | None = None) -> dict:
    return load(
        {
            "image": _write(tmp_path / "case_007.nii.gz", image),
            "label": _write(tmp_path / "case_007_seg.nii.gz", label, label_affine),
        }
    )


def _image(shape=(8, 9, 10)) -> np.ndarray:
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _label(shape=(8, 9, 10)) -> np.ndarray:
    label = np.zeros(shape, dtype=np.uint8)
    label[2:4, 2:4, 2:4], label[4:6, 2:4, 2:4] = 1, 2
    return label


@needs_data
def test_validate_passes_a_real_hippocampus_case_unchanged():
    root = DATA / "msd_hippocampus"
    data = load(
        {"image": str(root / "imagesTr" / HIPPOCAMPUS_CASE), "label": str(root / "labelsTr" / HIPPOCAMPUS_CASE)}
    )
    out = ValidateSampled(keys=["image", "label"], num_channels=1, num_classes=3)(data)
    assert out.keys() == data.keys()
    assert out["image"] is data["image"] and out["label"] is data["label"]


def test_validate_accepts_affines_within_tolerance(tmp_path):
    affine = np.eye(4)
    affine[0, 3] = 1e-5
    data = _load_pair(tmp_path, _image(), _label(), label_affine=affine)
    out = ValidateSampled(num_channels=1, num_classes=3)(data)
    assert out["image"] is data["image"] and out["label"] is data["label"]


@pytest.mark.parametrize(
    "image, label, label_affine, kwargs, message",
    [
        (_image(), _label((8, 9, 11)), None, {}, r"'label' spatial shape \(8, 9, 11\) does not match 'image'"),
        (_image(), _label(), np.diag([1.0, 1.0, 2.0, 1.0]), {}, r"'label' affine differs .* by up to 1"),
        (_image((8, 9, 10, 2)), _label(), None, {"num_channels": 4}, r"'image' has 2 channel\(s\).* expects 4"),
        (
            np.where(_label() == 1, np.nan, _image()).astype(np.float32),
            _label(),
            None,
            {},
            r"'image' has 8 NaN or infinite voxel\(s\)",
        ),
        (_image(), _label() * 2, None, {"num_classes": 3}, r"values \[4\] outside the declared classes 0..2"),
    ],
    ids=["shape", "affine", "channels", "nan", "label_values"],
)
def test_validate_names_the_case_and_the_problem(tmp_path, image, label, label_affine, kwargs, message):
    data = _load_pair(tmp_path, image, label, label_affine)
    with pytest.raises(ValueError, match=message) as error:
        ValidateSampled(**kwargs)(data)
    assert "case_007.nii.gz" in str(error.value)


def test_validate_lists_every_problem_at_once(tmp_path):
    label = _label((8, 9, 11)).astype(np.float32)
    label[0, 0, 0] = 0.5
    data = _load_pair(tmp_path, _image((8, 9, 10, 2)), label)
    with pytest.raises(ValueError, match=r"spatial shape.*channel\(s\).*values \[0\.5, 2\]"):
        ValidateSampled(num_channels=1, num_classes=2)(data)


# label values 0..4 along one axis, and the expected TC / WT / ET membership of each value per scheme
@pytest.mark.parametrize(
    "scheme, values, tc, wt, et",
    [
        ("msd", [0, 1, 2, 3], [0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]),
        ("brats2013", [0, 1, 2, 3, 4], [0, 1, 0, 1, 1], [0, 1, 1, 1, 1], [0, 0, 0, 0, 1]),
        ("brats2021", [0, 1, 2, 4], [0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 1]),
    ],
)
def test_brats_regions_per_scheme(scheme, values, tc, wt, et):
    label = torch.tensor(values, dtype=torch.uint8).view(1, -1, 1, 1)
    regions = ConvertBratsLabelsToRegions(scheme)(label)
    assert regions.shape == (3, len(values), 1, 1) and regions.dtype == torch.uint8
    assert regions[:, :, 0, 0].tolist() == [tc, wt, et]


def test_brats_regions_reject_unknown_scheme_and_foreign_values():
    with pytest.raises(ValueError, match=r"'brats2013', 'brats2021', 'msd'"):
        ConvertBratsLabelsToRegions("brats2023")
    with pytest.raises(ValueError, match=r"label values \[3\] are not part of the 'brats2021' scheme"):
        ConvertBratsLabelsToRegions("brats2021")(np.array([[[0, 1, 3]]]))


@needs_data
def test_brats_regions_on_a_real_brats2013_label():
    data = LoadImaged(keys="label", ensure_channel_first=True)({"label": str(BRATS_LABEL)})
    label = data["label"].as_tensor()
    regions = ConvertBratsLabelsToRegionsd(keys="label", scheme="brats2013")(data)["label"]
    assert regions.shape == (3, 240, 240, 155)
    assert torch.equal(regions.affine, data["label"].affine)
    counts = {v: int((label == v).sum()) for v in range(5)}
    assert regions.sum(dim=(1, 2, 3)).tolist() == [
        counts[1] + counts[3] + counts[4],
        counts[1] + counts[2] + counts[3] + counts[4],
        counts[4],
    ]
    with pytest.raises(ValueError, match=r"brats_2013_pat0006_1\.nii\.gz: label values \[4\]"):
        ConvertBratsLabelsToRegionsd(keys="label", scheme="msd")(data)


def test_training_spacingd_leaves_a_string_entry_named_like_the_key_alone():
    """MONAI Label adds ``image_path`` (a string) next to ``image``; MONAI 1.6.1's ``Spacingd`` fails on it
    (``test_workarounds.py``)."""
    from monai.data import MetaTensor

    from lightmedseg_bundle.transforms import TrainingSpacingd

    affine = torch.diag(torch.tensor([0.5, 1.0, 2.0, 1.0]))
    image = MetaTensor(torch.rand(1, 8, 8, 8), affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    data = {"image": image, "image_path": "/data/case.nii.gz", "image_meta_dict": {}}
    spacing = TrainingSpacingd("image", pixdim=(1.0, 1.0, 1.0))
    out = spacing(dict(data))
    assert out["image"].shape[:3] == (1, 4, 8) and out["image_path"] == "/data/case.nii.gz"
    assert out["image_meta_dict"]["filename_or_obj"] == "case.nii.gz"
    restored = spacing.inverse(out)
    assert restored["image"].shape == (1, 8, 8, 8)
