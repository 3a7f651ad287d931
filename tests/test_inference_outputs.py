"""Inference outputs are never lost or half-written: one file per input (folders kept when names repeat), an
existing output is replaced only with ``--overwrite true``, files appear complete or not at all, and a corrupted
input is refused before any output is written. Through the real ``inference`` command with the shipped weights."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import CONFIGS, REPO_ROOT, hippocampus_cases, needs_hippocampus, run_bundle, write_datalist

from lightmedseg_bundle.inference.atomic_output import PARTIAL_PREFIX, atomic_image_writer

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real


def _infer(tmp_path: Path, *args, check: bool = True):
    return run_bundle(
        "inference", "--config_file", str(CONFIGS / "inference.json"), "--bundle_root", REPO_ROOT, *args,
        cwd=tmp_path, check=check,
    )  # fmt: skip


def _root_cause(proc) -> str:
    return proc.stderr.rpartition("ERROR (root cause):")[2]


@needs_hippocampus
def test_same_file_names_in_different_folders_keep_their_folders_and_are_not_overwritten(tmp_path):
    cases = hippocampus_cases(2)
    shapes = [nib.load(c["image"]).shape for c in cases]
    assert shapes[0] != shapes[1]
    inputs = []
    for folder, case in zip(("p1", "p2"), cases, strict=True):
        (tmp_path / "data" / folder).mkdir(parents=True)
        inputs.append(str(shutil.copy(case["image"], tmp_path / "data" / folder / "t1.nii.gz")))
    datalist = write_datalist(tmp_path / "list.json", training=[], test=inputs)
    out = tmp_path / "out"
    _infer(tmp_path, "--datalist_file", datalist, "--output_dir", out)

    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz"))
    assert written == ["p1/t1/t1_seg.nii.gz", "p2/t1/t1_seg.nii.gz"]
    for folder, shape in zip(("p1", "p2"), shapes, strict=True):
        assert nib.load(out / folder / "t1" / "t1_seg.nii.gz").shape == shape  # each input's own label map
    before = {name: (out / name).read_bytes() for name in written}

    again = _infer(tmp_path, "--datalist_file", datalist, "--output_dir", out, check=False)
    assert again.returncode != 0 and "2 of the 2 output file(s) exist already" in _root_cause(again)
    assert "--overwrite true" in _root_cause(again)
    assert {name: (out / name).read_bytes() for name in written} == before

    replaced = _infer(tmp_path, "--datalist_file", datalist, "--output_dir", out, "--overwrite", "true")
    assert (
        replaced.stdout.count("--overwrite true: replacing") + replaced.stderr.count("--overwrite true: replacing") == 2
    )
    assert not list(out.rglob(f"{PARTIAL_PREFIX}*"))


@needs_hippocampus
def test_two_inputs_that_would_write_one_file_are_refused_before_any_work(tmp_path):
    image = hippocampus_cases(1)[0]["image"]
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(image, data / "t1.nii.gz")
    (data / "t1.nii").write_bytes(gzip.decompress(Path(image).read_bytes()))
    proc = _infer(tmp_path, "--input_dir", data, "--input_pattern", "t1.nii*", "--output_dir", tmp_path / "out",
                  check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "would be written by more than one input" in _root_cause(proc) and "t1.nii, " in _root_cause(proc)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.nii.gz"))


@needs_hippocampus
def test_an_input_corrupted_inside_its_gzip_stream_is_refused_before_any_output(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    good = hippocampus_cases(2)
    shutil.copy(good[0]["image"], data / "a_good.nii.gz")
    raw = bytearray(Path(good[1]["image"]).read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 200] = bytes(b ^ 0xFF for b in raw[middle : middle + 200])  # gzip trailer left intact
    (data / "b_corrupt.nii.gz").write_bytes(bytes(raw))
    proc = _infer(tmp_path, "--input_dir", data, "--output_dir", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert "corrupt" in _root_cause(proc) and "b_corrupt.nii.gz" in _root_cause(proc)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.nii.gz"))


def _label_map_writer():
    writer = atomic_image_writer(".nii.gz")()
    writer.set_data_array(np.zeros((1, 8, 8, 8), dtype=np.uint8), channel_dim=0)
    writer.set_metadata({"affine": np.eye(4)})
    return writer


def test_a_label_map_interrupted_while_saving_leaves_no_file_under_its_name(tmp_path, monkeypatch):

    def killed_halfway(image, filename):
        Path(filename).write_bytes(b"\x1f\x8b partial")
        raise KeyboardInterrupt  # as a signal would, mid-write

    monkeypatch.setattr(nib, "save", killed_halfway)
    target = tmp_path / "case" / "case_seg.nii.gz"
    target.parent.mkdir()
    with pytest.raises(KeyboardInterrupt):
        _label_map_writer().write(str(target))
    assert list(target.parent.iterdir()) == []
    monkeypatch.undo()
    _label_map_writer().write(str(target))
    assert nib.load(target).shape == (8, 8, 8) and list(target.parent.iterdir()) == [target]


@needs_hippocampus
def test_one_bad_case_among_good_ones_is_refused_before_any_output(tmp_path):
    """[good, NaN, good]: every case is checked before inference starts; the error names the bad one."""
    data = tmp_path / "data"
    data.mkdir()
    cases = hippocampus_cases(3)
    for name, case in zip(("a", "b_nan", "c"), cases, strict=True):
        shutil.copy(case["image"], data / f"{name}.nii.gz")
    image = nib.load(data / "b_nan.nii.gz")
    values = np.asarray(image.dataobj, dtype=np.float32)
    values[5, 5, 5] = np.nan
    nib.save(nib.Nifti1Image(values, image.affine), data / "b_nan.nii.gz")
    proc = _infer(tmp_path, "--input_dir", data, "--output_dir", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert "1 NaN or infinite voxel(s)" in _root_cause(proc) and "b_nan.nii.gz" in _root_cause(proc)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.nii.gz"))


@needs_hippocampus
def test_a_one_slice_volume_keeps_its_three_axes(tmp_path):
    source = nib.load(hippocampus_cases(1)[0]["image"])
    data = tmp_path / "data"
    data.mkdir()
    one_slice = np.asarray(source.dataobj)[:, :, 17:18]
    nib.save(nib.Nifti1Image(one_slice, source.affine), data / "slice.nii.gz")
    _infer(tmp_path, "--input_dir", data, "--output_dir", tmp_path / "out")
    pred = nib.load(tmp_path / "out" / "slice" / "slice_seg.nii.gz")
    assert pred.shape == one_slice.shape  # (X, Y, 1), not (X, Y)
    np.testing.assert_allclose(pred.affine, source.affine, atol=1e-5)
