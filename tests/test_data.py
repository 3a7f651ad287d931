import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist

from lightmedseg_bundle.data import validated_datalist

HIPPOCAMPUS = Path("/work/shared/data/msd_hippocampus")


def _write(path: Path, shape=(6, 7, 8), affine=None, dtype=np.float32) -> str:
    nib.save(nib.Nifti1Image(np.ones(shape, dtype=dtype), np.eye(4) if affine is None else affine), path)
    return str(path)


def _case(tmp_path: Path, name: str, image_shape=(6, 7, 8), label_shape=(6, 7, 8), label_affine=None) -> dict:
    return {
        "image": _write(tmp_path / f"{name}_img.nii.gz", image_shape),
        "label": _write(tmp_path / f"{name}_seg.nii.gz", label_shape, label_affine, np.uint8),
    }


def test_good_datalist_is_returned_unchanged(tmp_path):
    datalist = [_case(tmp_path, "a"), _case(tmp_path, "b", image_shape=(6, 7, 8, 2))]
    datalist[1]["image"] = _write(tmp_path / "b_img.nii", (6, 7, 8, 2))  # uncompressed NIfTI too
    assert validated_datalist(datalist) is datalist
    validated_datalist(datalist[1:], num_channels=2)


def test_missing_file_names_case_key_and_path(tmp_path):
    datalist = [_case(tmp_path, "a"), _case(tmp_path, "b")]
    datalist[1]["label"] = str(tmp_path / "nowhere.nii.gz")
    with pytest.raises(ValueError, match=r"case 1 \('label'\): file not found: .*nowhere\.nii\.gz"):
        validated_datalist(datalist)


@pytest.mark.parametrize("keep_fraction", [0.0, 0.1, 0.5, 0.95])
def test_truncated_gzip_is_reported(tmp_path, keep_fraction):
    case = _case(tmp_path, "a", image_shape=(20, 20, 20))
    data = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)  # incompressible enough
    nib.save(nib.Nifti1Image(data, np.eye(4)), case["image"])
    raw = Path(case["image"]).read_bytes()
    Path(case["image"]).write_bytes(raw[: int(len(raw) * keep_fraction)])
    with pytest.raises(
        ValueError, match=r"case 0 \('image'\): (unreadable, truncated or corrupt|truncated) file.*a_img\.nii\.gz"
    ):
        validated_datalist([case])


@pytest.mark.skipif(not HIPPOCAMPUS.is_dir(), reason="real data not found")
def test_bytes_flipped_inside_a_real_gzip_are_caught_by_its_crc(tmp_path):
    # the gzip trailer (CRC-32 and size) is intact, so its size matches the header; only the CRC tells
    raw = bytearray((HIPPOCAMPUS / "imagesTr" / "hippocampus_001.nii.gz").read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 200] = bytes(b ^ 0xFF for b in raw[middle : middle + 200])
    path = tmp_path / "hippocampus_001.nii.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"case 0 \('image'\): unreadable, truncated or corrupt file.*hippocampus_001"):
        validated_datalist([{"image": str(path)}], label_key=None)


def test_multi_member_gzip_is_not_mistaken_for_truncated(tmp_path):
    # the gzip trailer then records the size of the last member only, not of the whole file
    case = _case(tmp_path, "a")
    raw = gzip.decompress(Path(case["image"]).read_bytes())
    Path(case["image"]).write_bytes(gzip.compress(raw[:200]) + gzip.compress(raw[200:]))
    assert validated_datalist([case]) == [case]


def test_truncated_uncompressed_nifti_is_reported(tmp_path):
    path = Path(_write(tmp_path / "a_img.nii", (10, 10, 10)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"truncated file, it holds 4252 bytes but its header needs 4352"):
        validated_datalist([{"image": str(path)}], label_key=None)


def test_shape_affine_and_channel_mismatches_are_all_listed(tmp_path):
    shifted = np.eye(4)
    shifted[:3, 3] = [0.0, 0.0, 5.0]
    datalist = [
        _case(tmp_path, "ok"),
        _case(tmp_path, "shape", label_shape=(6, 7, 9)),
        _case(tmp_path, "affine", label_affine=shifted),
        _case(tmp_path, "channels", image_shape=(6, 7, 8, 4)),
    ]
    with pytest.raises(ValueError) as error:
        validated_datalist(datalist, num_channels=1)
    message = str(error.value)
    assert message.startswith("3 problem(s) in a datalist of 4 case(s)")
    assert "case 0" not in message
    assert "case 1: 'image' spatial shape (6, 7, 8) does not match 'label' spatial shape (6, 7, 9)" in message
    assert "case 2: 'image' and 'label' affines differ by up to 5" in message
    assert "case 3 ('image'): 4 channel(s), the configuration expects 1" in message


def test_affines_within_tolerance_pass(tmp_path):
    nudged = np.eye(4)
    nudged[0, 3] = 1e-5
    case = _case(tmp_path, "a", label_affine=nudged)
    assert validated_datalist([case]) == [case]


def test_listing_is_capped(tmp_path):
    datalist = [{"image": str(tmp_path / f"missing_{i}.nii.gz")} for i in range(30)]
    with pytest.raises(
        ValueError, match=r"30 problem\(s\)(.|\n)*missing_4\.nii\.gz\n  - \.\.\. and 25 more problem\(s\)$"
    ):
        validated_datalist(datalist, label_key=None, max_listed=5)


@pytest.mark.skipif(not HIPPOCAMPUS.is_dir(), reason="shared real data not available")
def test_real_hippocampus_dataset_passes():
    datalist = load_decathlon_datalist(str(HIPPOCAMPUS / "dataset.json"), True, "training", str(HIPPOCAMPUS))
    assert len(validated_datalist(datalist, num_channels=1)) == 173


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_every_nan_and_infinite_voxel_is_counted_across_read_chunks(tmp_path, suffix):
    data = np.random.default_rng(1).normal(size=(80, 80, 80)).astype(np.float32)  # 2 MB: several 1 MB chunks
    flat = data.reshape(-1, order="F")
    around_chunk_edge = (1 << 20) // 4 - 88  # voxel at the first chunk boundary, after the 352-byte header
    for index in (0, around_chunk_edge - 1, around_chunk_edge, around_chunk_edge + 1, flat.size - 1):
        flat[index] = np.nan
    flat[1000] = np.inf
    image = tmp_path / f"a_img{suffix}"
    nib.save(nib.Nifti1Image(flat.reshape(data.shape, order="F"), np.eye(4)), image)
    with pytest.raises(ValueError, match=r"case 0 \('image'\): 6 NaN or infinite voxel\(s\): .*a_img"):
        validated_datalist([{"image": str(image)}], label_key=None)


def test_a_2d_image_is_refused_naming_the_case(tmp_path):
    image = _write(tmp_path / "slice.nii.gz", (20, 30))
    with pytest.raises(ValueError, match=r"case 0 \('image'\): a 2D image of shape \(20, 30\), expected a 3D volume"):
        validated_datalist([{"image": image}], label_key=None)
