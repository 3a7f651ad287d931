"""DICOM in, DICOM-SEG out.

A real hippocampus case is written as an MR DICOM series with ITK (one file per slice, with patient, study,
series and frame-of-reference UIDs), then ``python -m monai.bundle run inference`` runs with
``configs/inference_dicom.json`` (and ``inference_qa.json`` stacked on it) on the series folder. The DICOM-SEG is
read back with highdicom and compared, by physical position, with the NIfTI label map of the same run, which
itself must equal the label map that the NIfTI case gives.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import itk
import nibabel as nib
import numpy as np
import pytest
from conftest import HIPPOCAMPUS_DIR, config_arg, needs_hippocampus
from inference_helpers import run_bundle_command, save_fresh_checkpoint
from monai.transforms import LoadImage

from lightmedseg_bundle.inference import dicom_series_datalist

hd = pytest.importorskip("highdicom", reason="DICOM-SEG output needs highdicom (pip install highdicom)")
import pydicom  # noqa: E402  (installed with highdicom)
from pydicom.uid import generate_uid  # noqa: E402

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

CASE = HIPPOCAMPUS_DIR / "imagesTr" / "hippocampus_001.nii.gz"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def write_dicom_series(image, folder: Path, patient_id: str = "hippo001") -> dict[str, str]:
    """Write a 3D ITK image as an MR DICOM series, one file per slice; returns its UIDs."""
    folder.mkdir(parents=True, exist_ok=True)
    uids = {"study": generate_uid(), "series": generate_uid(), "frame_of_reference": generate_uid()}
    size = itk.size(image)
    for k in range(size[2]):
        region = itk.ImageRegion[3]([0, 0, k], [size[0], size[1], 1])
        slice_image = itk.region_of_interest_image_filter(image, region_of_interest=region)
        tags = slice_image.GetMetaDataDictionary()
        for tag, value in {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
            "0008|0018": generate_uid(),
            "0008|0060": "MR",
            "0008|0020": "20260101",
            "0008|0030": "120000",
            "0010|0010": "Test^Hippocampus",
            "0010|0020": patient_id,
            "0020|000d": uids["study"],
            "0020|000e": uids["series"],
            "0020|0052": uids["frame_of_reference"],
            "0020|0013": str(k + 1),
            "0018|0050": f"{itk.spacing(image)[2]:.6f}",
        }.items():
            tags[tag] = value
        io = itk.GDCMImageIO.New()
        io.KeepOriginalUIDOn()
        itk.imwrite(slice_image, str(folder / f"slice_{k:03d}.dcm"), imageio=io)
    return uids


@pytest.fixture(scope="module")
def dicom_run(tmp_path_factory) -> dict:
    if not CASE.is_file():
        pytest.skip(f"real data not found at {CASE}")
    folder = tmp_path_factory.mktemp("dicom")
    series = folder / "hippocampus_001_series"
    uids = write_dicom_series(itk.imread(str(CASE), itk.SS), series)
    ckpt = save_fresh_checkpoint(folder / "model.pt")
    run_bundle_command(
        "run", "inference",
        "--config_file", config_arg("inference.json", "inference_dicom.json", "inference_qa.json"),
        "--input_dir", series, "--ckpt_path", ckpt, "--output_dir", folder / "out", cwd=folder,
    )  # fmt: skip
    run_bundle_command(
        "run", "inference", "--config_file", config_arg("inference.json"),
        "--input_dir", HIPPOCAMPUS_DIR / "imagesTr", "--input_pattern", CASE.name,
        "--ckpt_path", ckpt, "--output_dir", folder / "nifti_out", cwd=folder,
    )  # fmt: skip
    case = folder / "out" / series.name
    return {
        "series": series,
        "uids": uids,
        "seg": case / f"{series.name}_seg.dcm",
        "label_map": case / f"{series.name}_seg.nii.gz",
        "case_dir": case,
        "nifti_label_map": folder / "nifti_out" / "hippocampus_001" / "hippocampus_001_seg.nii.gz",
    }


@needs_hippocampus
def test_the_dicom_series_loads_like_the_nifti_case(dicom_run):
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    from_dicom, from_nifti = loader(str(dicom_run["series"])), loader(str(CASE))
    assert from_dicom.shape == from_nifti.shape
    np.testing.assert_array_equal(from_dicom.numpy(), from_nifti.numpy())
    np.testing.assert_allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-4)


@needs_hippocampus
def test_dicom_input_gives_the_label_map_of_the_nifti_input(dicom_run):
    from_dicom, from_nifti = nib.load(dicom_run["label_map"]), nib.load(dicom_run["nifti_label_map"])
    np.testing.assert_allclose(from_dicom.affine, from_nifti.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(from_dicom.dataobj), np.asarray(from_nifti.dataobj))


@needs_hippocampus
def test_dicom_seg_references_the_source_series_with_the_metadata_label_names(dicom_run):
    seg = pydicom.dcmread(dicom_run["seg"])
    source = pydicom.dcmread(sorted(dicom_run["series"].glob("*.dcm"))[0])
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.Modality == "SEG"
    assert seg.SegmentationType == "BINARY"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == dicom_run["uids"]["series"]
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced <= {pydicom.dcmread(p).SOPInstanceUID for p in dicom_run["series"].glob("*.dcm")}
    assert seg.StudyInstanceUID == dicom_run["uids"]["study"] and seg.PatientID == source.PatientID
    assert seg.FrameOfReferenceUID == dicom_run["uids"]["frame_of_reference"]
    assert seg.SeriesInstanceUID != dicom_run["uids"]["series"]
    meta = json.loads((Path(__file__).resolve().parent.parent / "configs" / "metadata.json").read_text())
    channel_def = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [channel_def["1"], channel_def["2"]]
    assert [s.SegmentNumber for s in seg.SegmentSequence] == [1, 2]
    assert {s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for s in seg.SegmentSequence} == {"Hippocampus"}
    assert all(s.SegmentAlgorithmName == "LightMedSeg" for s in seg.SegmentSequence)


@needs_hippocampus
def test_dicom_seg_voxels_match_the_label_map_by_physical_position(dicom_run):
    volume = hd.seg.segread(dicom_run["seg"]).get_volume(combine_segments=True, relabel=False)
    label_map = nib.load(dicom_run["label_map"])
    labels = np.asarray(label_map.dataobj)
    index = np.indices(volume.array.shape).reshape(3, -1).T.astype(np.float64)  # (slice, row, column)
    lps = index @ volume.affine[:3, :3].T + volume.affine[:3, 3]
    ras = lps * np.array([-1.0, -1.0, 1.0])
    voxel = np.linalg.inv(label_map.affine) @ np.c_[ras, np.ones(len(ras))].T
    voxel = voxel[:3].T
    nearest = np.rint(voxel).astype(int)
    np.testing.assert_allclose(voxel, nearest, atol=1e-3)
    np.testing.assert_array_equal(volume.array.reshape(-1), labels[tuple(nearest.T)])
    for label in (1, 2):  # the frames the SEG leaves out hold no foreground
        assert int((volume.array == label).sum()) == int((labels == label).sum())
    assert (labels > 0).sum() > 0


@needs_hippocampus
def test_qa_outputs_come_with_dicom_input(dicom_run):
    name = dicom_run["series"].name
    texture = nib.load(dicom_run["case_dir"] / f"{name}_texture.nii.gz")
    np.testing.assert_allclose(texture.affine, nib.load(dicom_run["label_map"]).affine, atol=1e-5)
    markups = json.loads((dicom_run["case_dir"] / f"{name}_anchors.mrk.json").read_text())
    assert len(markups["markups"][0]["controlPoints"]) == 8
    report = json.loads((dicom_run["case_dir"] / f"{name}_qc.json").read_text())
    assert report["image"] == str(dicom_run["series"])
    assert report["uncertainty"]["method"] == "flip" and report["uncertainty"]["flip_axes"] == [0]
    assert 0.0 <= report["uncertainty"]["score"] <= 1.0


def _tiny_series(folder: Path, seed: int) -> dict[str, str]:
    array = np.random.default_rng(seed).integers(0, 100, (3, 8, 8)).astype(np.int16)
    return write_dicom_series(itk.image_from_array(array), folder, patient_id=f"tiny{seed}")


def test_series_folders_are_found_and_ambiguous_folders_refused(tmp_path):
    _tiny_series(tmp_path / "root" / "a", 0)
    _tiny_series(tmp_path / "root" / "b", 1)
    (tmp_path / "root" / "notes").mkdir()
    found = dicom_series_datalist(tmp_path / "root")
    assert [Path(item["image"]).name for item in found] == ["a", "b"]
    assert dicom_series_datalist(tmp_path / "root" / "a") == [{"image": str(tmp_path / "root" / "a")}]

    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "root" / "a", mixed)
    for path in (tmp_path / "root" / "b").iterdir():
        shutil.copy(path, mixed / f"b_{path.name}")
    with pytest.raises(ValueError, match="2 DICOM series"):
        dicom_series_datalist(mixed)
    with pytest.raises(FileNotFoundError, match="no DICOM files"):
        dicom_series_datalist(tmp_path / "root" / "notes")
