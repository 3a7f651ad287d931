"""Cohort inference sharded over processes: ``multi_gpu_inference.json`` under ``torchrun`` (2 gloo processes).

Five real hippocampus cases, so the shards are uneven (3 and 2). The two-process run must write exactly the files
of a one-process run, each label map voxel for voxel the same and written once, and with ``inference_qa.json`` one
``qc_report.csv`` with one row per case, in datalist order, as the single run writes it. A rerun into the same folder
is refused by every rank before anything is written, and ``--overwrite true`` replaces each case once.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import REPO_ROOT, bundle_env, config_arg, hippocampus_cases, needs_hippocampus, write_datalist

from lightmedseg_bundle.inference.distributed_qc import merge_qc_csv, rank_csv_path

pytestmark = [pytest.mark.slow, needs_hippocampus]

CKPT = REPO_ROOT / "models" / "model.pt"
SEG = re.compile(r"writing: (\S+_seg\.nii\.gz)")


def _run(*args, processes: int, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``monai.bundle run inference`` in one process, or under torchrun with ``processes`` processes; one thread
    each, so that both compute the same floating-point sums."""
    launcher = [sys.executable, "-m", "monai.bundle"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                    "--rdzv_backend=c10d", "--rdzv_endpoint=127.0.0.1:0", "-m", "monai.bundle"]  # fmt: skip
    env = bundle_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [*launcher, "run", "inference", *[str(a) for a in args]]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _qc_rows(path: Path, output_dir: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [
            {**row, "prediction": str(Path(row["prediction"]).relative_to(output_dir))} for row in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("cohort")
    images = [case["image"] for case in hippocampus_cases(5)]
    datalist = write_datalist(tmp / "dataset.json", [], test=images)
    common = [
        "--bundle_root",
        tmp / "bundle",
        "--ckpt_path",
        CKPT,
        "--datalist_file",
        datalist,
        "--save_priors",
        "false",
    ]
    single, sharded = tmp / "single", tmp / "sharded"
    _run("--config_file", config_arg("inference.json", "inference_qa.json"), *common, "--output_dir", single,
         processes=1, cwd=tmp)  # fmt: skip
    proc = _run(
        "--config_file", config_arg("inference.json", "inference_qa.json", "multi_gpu_inference.json"), *common,
        "--output_dir", sharded, processes=2, cwd=tmp,
    )  # fmt: skip
    return {"tmp": tmp, "images": images, "datalist": datalist, "single": single, "sharded": sharded,
            "output": proc.stdout + proc.stderr}  # fmt: skip


def test_ranks_share_the_cases_unevenly_and_write_each_once(cohort):
    output = cohort["output"]
    assert re.search(r"rank 0/2: epoch 1/1 done, 3 iterations", output), output[-3000:]
    assert re.search(r"rank 1/2: epoch 1/1 done, 2 iterations", output), output[-3000:]
    written = SEG.findall(output)
    assert sorted(written) == sorted(set(written)) and len(written) == 5, written


def test_sharded_outputs_equal_the_single_process_outputs(cohort):
    single, sharded = cohort["single"], cohort["sharded"]
    assert _files(sharded) == _files(single)  # no per-rank CSV left, no partial file
    segs = sorted(p for p in _files(single) if p.endswith("_seg.nii.gz"))
    assert len(segs) == 5
    for name in segs:
        a, b = nib.load(single / name), nib.load(sharded / name)
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj), err_msg=name)
        np.testing.assert_allclose(a.affine, b.affine, err_msg=name)


def test_one_merged_qc_report_in_datalist_order(cohort):
    single, sharded = cohort["single"], cohort["sharded"]
    rows = _qc_rows(sharded / "qc_report.csv", sharded)
    assert [row["image"] for row in rows] == cohort["images"]
    assert rows == _qc_rows(single / "qc_report.csv", single)
    assert "5 row(s) of 2 ranks merged" in cohort["output"]


def test_rerun_is_refused_by_every_rank_and_overwrite_replaces_each_case_once(cohort):
    tmp, sharded = cohort["tmp"], cohort["sharded"]
    before = {p: (sharded / p).stat().st_mtime_ns for p in _files(sharded)}
    args = ["--config_file", config_arg("inference.json", "multi_gpu_inference.json"), "--bundle_root",
            tmp / "bundle", "--ckpt_path", CKPT, "--datalist_file", cohort["datalist"], "--output_dir", sharded]  # fmt: skip
    proc = _run(*args, processes=2, cwd=tmp, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    for rank in (0, 1):
        assert re.search(
            rf"\[rank{rank}\]: FileExistsError: 5 of the 5 output file\(s\) exist already", output
        ), output[-4000:]
    assert {p: (sharded / p).stat().st_mtime_ns for p in _files(sharded)} == before  # nothing written

    proc = _run(*args, "--overwrite", "true", processes=2, cwd=tmp)  # without the QC report this time
    written = SEG.findall(proc.stdout + proc.stderr)
    assert sorted(written) == sorted(set(written)) and len(written) == 5, written
    for name in (p for p in before if p.endswith("_seg.nii.gz")):
        np.testing.assert_array_equal(
            np.asarray(nib.load(sharded / name).dataobj), np.asarray(nib.load(cohort["single"] / name).dataobj)
        )
    assert (sharded / "qc_report.csv").stat().st_mtime_ns == before["qc_report.csv"]


def test_merge_qc_csv_orders_rows_by_datalist_and_removes_the_parts(tmp_path):
    """Unit test of the merge: rank files in, one CSV in datalist order out; unlisted rows last; parts removed."""
    target = tmp_path / "qc_report.csv"
    rows = {0: [("c", "3"), ("a", "1"), ("x", "9")], 1: [("b", "2")]}
    for rank, items in rows.items():
        with open(rank_csv_path(target, rank), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["case", "image", "value"] + (["extra"] if rank == 1 else []))
            writer.writerows([(name, str(tmp_path / f"{name}.nii.gz"), value) + (("e",) if rank == 1 else ())
                              for name, value in items])  # fmt: skip
    order = [str(tmp_path / f"{name}.nii.gz") for name in "abc"]
    parts = [rank_csv_path(target, r) for r in (0, 1, 2)]  # rank 2's file is missing: logged, skipped
    assert merge_qc_csv(target, parts, order) == 4
    with open(target, newline="") as f:
        merged = list(csv.DictReader(f))
    assert [row["case"] for row in merged] == ["a", "b", "c", "x"]
    assert list(merged[0]) == ["case", "image", "value", "extra"] and merged[1]["extra"] == "e"
    assert not any(part.exists() for part in parts)
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == json.dumps(["qc_report.csv"])
