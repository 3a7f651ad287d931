"""End-to-end bundle commands on real hippocampus cases: train, evaluate, infer, resume, bad inputs.

Every test runs ``python -m monai.bundle run ...`` in a subprocess, as a user would. One short training
(the ``trained_bundle`` session fixture, run from a temporary folder with absolute config paths and
``--bundle_root``) is shared by the evaluation and inference tests; evaluation runs from the bundle root
with relative config paths.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import (
    FAST_TRAIN_ARGS,
    REPO_ROOT,
    bundle_env,
    config_arg,
    hippocampus_cases,
    needs_hippocampus,
    run_bundle,
    tensorboard_scalars,
    write_datalist,
)

pytestmark = [pytest.mark.slow, needs_hippocampus]


def test_training_writes_checkpoints_logs_and_tensorboard(trained_bundle):
    ckpt_dir, output_dir = trained_bundle["ckpt_dir"], trained_bundle["output_dir"]
    stdout = trained_bundle["stdout"]
    # every epoch: model + optimizer + scheduler + trainer; the best model by validation Dice: model.pt
    checkpoint = torch.load(ckpt_dir / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True)
    assert set(checkpoint) == {"model", "optimizer", "lr_scheduler", "trainer", "best_model"}
    assert checkpoint["trainer"]["iteration"] == 2  # 4 training cases, batch size 2
    scalars = tensorboard_scalars(output_dir)
    assert [step for step, _ in scalars["train_loss"]] == [1, 2]  # the loss of each iteration
    ((epoch, dice),) = scalars["val_mean_dice"]  # one validation, after epoch 1
    assert epoch == 1 and 0.0 <= dice <= 1.0
    assert checkpoint["best_model"]["saved"][0][0] == pytest.approx(dice, abs=1e-4)  # what --resume restores
    best = torch.load(ckpt_dir / "model.pt", map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in best.values())
    assert any(k.startswith("stem") for k in best)
    # the split of the 5 listed cases, loss and metrics through StatsHandler, a progress bar
    assert "split 5 cases into 4 training / 1 validation" in stdout
    # the tqdm bar with the loss, on stderr; tqdm may skip drawing the last step of a fast epoch (mininterval)
    assert re.search(r"\[[12]/2\] +\d+%.*loss=\d", trained_bundle["stderr"])
    assert list(output_dir.glob("events.out.tfevents.*"))
    # nothing was written next to the configs
    assert not (REPO_ROOT / "models" / "checkpoint_epoch=1.pt").exists()
    # epoch N/M with an ETA, then a closing summary with the best Dice and where model.pt went
    log = stdout + trained_bundle["stderr"]
    assert re.search(r"epoch 1/1 done.*ETA", log)
    summary = next(line for line in log.splitlines() if "training finished:" in line)
    assert f"{dice:.4f}" in summary and str(ckpt_dir) in summary


def test_evaluate_from_bundle_root_writes_per_case_metrics(trained_bundle, hippocampus_datalist, tmp_path):
    """Run from the bundle root with relative config paths; Dice and HD95 per class and per case."""
    output_dir = tmp_path / "eval"
    proc = run_bundle(
        "--config_file", "['configs/train.json','configs/evaluate.json']",
        "--ckpt_dir", trained_bundle["ckpt_dir"],
        "--output_dir", output_dir,
        "--datalist_file", hippocampus_datalist,
        "--num_workers", "0",
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert "Restored all variables from" in proc.stdout
    metrics = dict(csv.reader(open(output_dir / "metrics.csv")))
    assert set(metrics) >= {"val_mean_dice", "val_hd95"}
    assert 0.0 <= float(metrics["val_mean_dice"]) <= 1.0
    with open(output_dir / "val_mean_dice_raw.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "class0", "class1", "mean"] and len(rows) == 2
    with open(output_dir / "per_case_metrics.csv") as f:
        per_case = list(csv.DictReader(f))
    assert len(per_case) == 1 and re.fullmatch(r"hippocampus_\d+", per_case[0]["case"])
    for column in ("dice_anterior", "dice_posterior", "hd95_anterior", "hd95_posterior"):
        float(per_case[0][column])
    assert (output_dir / "per_class_metrics.csv").is_file()
    assert re.search(r"anterior\s+[\d.]+\s+[\d.na]+", proc.stdout)  # the per-class table in the log


def _write_like(reference: nib.Nifti1Image, data: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    image.set_data_dtype(reference.get_data_dtype())
    nib.save(image, path)
    return path


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory) -> dict[str, Path]:
    """A real case as is (RAS), flipped to LPS, with permuted axes, and cropped smaller than the ROI."""
    folder = tmp_path_factory.mktemp("odd_inputs")
    source = nib.load(hippocampus_cases(1, start=1)[0]["image"])
    data, affine = np.asarray(source.dataobj), source.affine
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(data.shape[:2]) - 1
    return {
        "ras": _write_like(source, data, affine, folder / "ras_case.nii.gz"),
        "lps": _write_like(source, data[::-1, ::-1], affine @ flip, folder / "lps_case.nii.gz"),
        "perm": _write_like(source, data.transpose(1, 0, 2), affine[:, [1, 0, 2, 3]], folder / "perm_case.nii.gz"),
        "tiny": _write_like(source, data[5:15, 10:22, 8:17], affine, folder / "tiny_case.nii.gz"),
    }


def _prediction(output_dir: Path, image: Path) -> nib.Nifti1Image:
    name = image.name[: -len(".nii.gz")]
    return nib.load(output_dir / name / f"{name}_seg.nii.gz")


@pytest.mark.parametrize("tta", [False, True])
def test_inference_keeps_each_input_geometry(trained_bundle, odd_inputs, tmp_path, tta):
    """Label maps have the input's shape and affine, whatever its orientation or size (smaller than the ROI)."""
    output_dir = tmp_path / "pred"
    run_bundle(
        "inference",
        "--config_file", config_arg("inference.json"),
        "--bundle_root", trained_bundle["bundle_root"],
        "--ckpt_dir", trained_bundle["ckpt_dir"],
        "--input_dir", odd_inputs["ras"].parent,
        "--output_dir", output_dir,
        "--tta", str(tta).lower(),
        cwd=tmp_path,
    )  # fmt: skip
    for path in odd_inputs.values():
        source, pred = nib.load(path), _prediction(output_dir, path)
        assert pred.shape == source.shape, path.name
        np.testing.assert_allclose(pred.affine, source.affine, atol=1e-5, err_msg=path.name)
        assert pred.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2}
    # the LPS copy holds the same voxels in another order: its prediction, flipped back, is the same
    ras = np.asarray(_prediction(output_dir, odd_inputs["ras"]).dataobj)
    lps = np.asarray(_prediction(output_dir, odd_inputs["lps"]).dataobj)
    np.testing.assert_array_equal(lps[::-1, ::-1], ras)
    perm = np.asarray(_prediction(output_dir, odd_inputs["perm"]).dataobj)
    np.testing.assert_array_equal(perm.transpose(1, 0, 2), ras)


def test_inference_from_a_datalist_file(trained_bundle, tmp_path):
    cases = hippocampus_cases(2, start=3)
    datalist = write_datalist(tmp_path / "dataset.json", training=[], test=[c["image"] for c in cases])
    output_dir = tmp_path / "pred"
    run_bundle(
        "--config_file", "configs/inference.json",
        "--bundle_root", trained_bundle["bundle_root"],
        "--ckpt_dir", trained_bundle["ckpt_dir"],
        "--datalist_file", datalist,
        "--output_dir", output_dir,
        "--separate_folder", "False",
        cwd=REPO_ROOT,
    )  # fmt: skip
    for case in cases:
        name = Path(case["image"]).name[: -len(".nii.gz")]
        pred, source = nib.load(output_dir / f"{name}_seg.nii.gz"), nib.load(case["image"])
        assert pred.shape == source.shape
        np.testing.assert_allclose(pred.affine, source.affine, atol=1e-5)


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(tmp_path):
    """SIGKILL during training, then ``--resume true`` continues epochs, optimizer and scheduler state."""
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(1, 2))
    bundle_root = tmp_path / "bundle"
    ckpt_dir = bundle_root / "runs" / "training" / "models"
    common = [
        "--config_file", config_arg("train.json"),
        "--bundle_root", bundle_root,
        "--datalist_file", datalist,
        *FAST_TRAIN_ARGS,
        "--val_interval", "1000",
    ]  # fmt: skip
    common = [str(a) for a in common]
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", *common, "--epochs", "1000"]
    log = open(tmp_path / "killed_run.log", "w")
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=bundle_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while not list(ckpt_dir.glob("checkpoint_epoch=*.pt")):
            assert proc.poll() is None, (tmp_path / "killed_run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.5)
        time.sleep(1.5)  # let it get into a later epoch, possibly mid-save
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL

    checkpoints = sorted(ckpt_dir.glob("checkpoint_epoch=*.pt"))
    assert checkpoints, "the killed run left no checkpoint"
    for path in checkpoints:  # atomic writes: whatever is there loads
        torch.load(path, map_location="cpu", weights_only=True)
    done = max(int(re.search(r"=(\d+)\.pt$", p.name).group(1)) for p in checkpoints)

    proc = run_bundle("training", *common, "--epochs", str(done + 2), "--resume", "true", cwd=tmp_path)
    assert "resuming training from" in proc.stdout
    resumed = tensorboard_scalars(bundle_root / "runs" / "training" / "eval", newest_only=True)
    assert [step for step, _ in resumed["train_loss"]] == [done + 1, done + 2]  # epochs done + 1, done + 2 only
    state = torch.load(ckpt_dir / f"checkpoint_epoch={done + 2}.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == done + 2  # 2 cases, batch 2: one iteration per epoch
    assert state["lr_scheduler"]["last_epoch"] == done + 2
    steps = {int(s["step"]) for s in state["optimizer"]["state"].values()}
    assert steps == {done + 2}


def test_resumed_training_keeps_a_better_model_pt(trained_bundle, hippocampus_datalist, tmp_path):
    """The best Dice of the interrupted run is in its checkpoint; a worse validation after resuming keeps model.pt,
    and the trainer's best training Dice goes on from the interrupted run's."""
    ckpt_dir = tmp_path / "runs" / "training" / "models"
    ckpt_dir.mkdir(parents=True)
    for name in ("checkpoint_epoch=1.pt", "model.pt"):
        (ckpt_dir / name).write_bytes((trained_bundle["ckpt_dir"] / name).read_bytes())
    checkpoint = torch.load(ckpt_dir / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True)
    record = checkpoint["best_model"]
    record["saved"][0][0] = record["best_metric"] = 0.99  # as if epoch 1 had validated at 0.99
    checkpoint["trainer"]["best_metric"] = 0.98  # and had a training Dice of 0.98
    torch.save(checkpoint, ckpt_dir / "checkpoint_epoch=1.pt")
    best_before = (ckpt_dir / "model.pt").read_bytes()

    proc = run_bundle(
        "training",
        "--config_file", config_arg("train.json"),
        "--bundle_root", tmp_path,
        "--datalist_file", hippocampus_datalist,
        *FAST_TRAIN_ARGS,
        "--epochs", "2",
        "--resume", "true",
        cwd=tmp_path,
    )  # fmt: skip
    assert f"best model so far: {ckpt_dir / 'model.pt'} (key metric 0.9900)" in proc.stdout + proc.stderr
    ((epoch, dice),) = tensorboard_scalars(tmp_path / "runs" / "training" / "eval")["val_mean_dice"]
    assert epoch == 2 and dice < 0.99  # validated once after resuming, below the recorded best
    assert (ckpt_dir / "model.pt").read_bytes() == best_before, "the resumed run replaced a better model.pt"
    resumed = torch.load(ckpt_dir / "checkpoint_epoch=2.pt", map_location="cpu", weights_only=True)
    assert resumed["best_model"]["saved"][0][0] == 0.99
    assert (resumed["best_model"]["best_metric"], resumed["best_model"]["best_metric_epoch"]) == (0.99, 1)
    assert (resumed["trainer"]["best_metric"], resumed["trainer"]["best_metric_epoch"]) == (0.98, 1)


def test_resume_without_checkpoint_says_so(tmp_path, hippocampus_datalist):
    proc = run_bundle(
        "training",
        "--config_file", config_arg("train.json"),
        "--bundle_root", tmp_path,
        "--datalist_file", hippocampus_datalist,
        "--resume", "True",
        cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no checkpoint_*.pt" in proc.stderr and "run without --resume" in proc.stderr


# --- bad inputs: a clear error naming the case and the problem, before any training ---------------------------


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(data, affine), path)
    return str(path)


def _bad_case(folder: Path, problem: str) -> dict[str, str]:
    case = hippocampus_cases(1, start=4)[0]
    image, label = nib.load(case["image"]), nib.load(case["label"])
    data, seg, affine = np.asarray(image.dataobj).astype(np.float32), np.asarray(label.dataobj), image.affine
    folder.mkdir(parents=True)
    name = f"bad_{problem}"
    if problem == "missing":
        return {"image": str(folder / f"{name}.nii.gz"), "label": case["label"]}
    if problem == "shape":
        return {"image": case["image"], "label": _save(folder / f"{name}_seg.nii.gz", seg[:-3], affine)}
    if problem == "corrupt":
        raw = Path(case["image"]).read_bytes()  # a .nii.gz cut in half, as by an interrupted copy
        (folder / f"{name}.nii.gz").write_bytes(raw[: len(raw) // 2])
        return {"image": str(folder / f"{name}.nii.gz"), "label": case["label"]}
    if problem == "nan":
        data[3:6, 3:6, 3:6] = np.nan
        return {"image": _save(folder / f"{name}.nii.gz", data, affine), "label": case["label"]}
    if problem == "labels":
        seg = seg.astype(np.uint8).copy()
        seg[seg == 2] = 5
        image_path = _save(folder / f"{name}.nii.gz", data, affine)  # the error names the case by its image
        return {"image": image_path, "label": _save(folder / f"{name}_seg.nii.gz", seg, affine)}
    raise AssertionError(problem)


BAD_INPUTS = {
    # problem: words the error must hold besides the case's file name
    "missing": ["bad_missing", "file not found"],
    "shape": ["bad_shape", "spatial shape"],
    "corrupt": ["bad_corrupt", "truncated|corrupt"],
    "nan": ["bad_nan", "NaN"],
    "labels": ["bad_labels", "outside the declared classes"],
}


def test_bad_inputs_fail_early_with_a_clear_message(tmp_path):
    """Missing file, shape mismatch, corrupt NIfTI, NaN intensities, out-of-range labels, via the real command."""
    good = hippocampus_cases(1)
    procs = {}
    for problem in BAD_INPUTS:
        folder = tmp_path / problem
        datalist = write_datalist(folder / "lists" / "dataset.json", [*good, _bad_case(folder / "data", problem)], good)
        cmd = [
            sys.executable, "-m", "monai.bundle", "run", "training",
            "--config_file", config_arg("train.json"),
            "--bundle_root", str(folder / "bundle"),
            "--datalist_file", str(datalist),
            *FAST_TRAIN_ARGS,
        ]  # fmt: skip
        procs[problem] = subprocess.Popen(
            cmd, cwd=folder, env=bundle_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    failures = []
    for problem, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        name, pattern = BAD_INPUTS[problem]
        # the traceback ends with the root cause on its own, naming the case and the problem
        summary = stderr.rpartition("ERROR (root cause):")[2]
        ok = (
            proc.returncode != 0
            and name in summary
            and re.search(pattern, summary, flags=re.IGNORECASE)
            and not (tmp_path / problem / "bundle" / "runs").exists()
            and "train_loss" not in stdout
        )
        if not ok:
            failures.append(f"{problem}: exit {proc.returncode}\n{stderr[-2500:]}")
    assert not failures, "\n\n".join(failures)


# --- fine-tuning from the shipped weights ----------------------------------------------------------------------


def test_fine_tuning_starts_from_the_shipped_weights(tmp_path):
    """``--pretrained_weights models/model.pt`` loads the network only: epochs and optimizer start afresh."""
    shipped = REPO_ROOT / "models" / "model.pt"
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(2, 2))
    proc = run_bundle(
        "training",
        "--config_file", config_arg("train.json"),
        "--bundle_root", tmp_path / "bundle",
        "--datalist_file", datalist,
        *FAST_TRAIN_ARGS,
        "--roi_size", "[48,64,48]",
        "--learning_rate", "0",
        "--pretrained_weights", shipped,
        cwd=tmp_path,
    )  # fmt: skip
    assert "starting training from the weights in" in proc.stdout + proc.stderr
    ((_, best),) = tensorboard_scalars(tmp_path / "bundle" / "runs" / "training" / "eval")["val_mean_dice"]
    assert best > 0.7, f"one epoch from the shipped weights should keep their Dice, got {best}"
    expected = torch.load(shipped, map_location="cpu", weights_only=True)
    state = torch.load(
        tmp_path / "bundle" / "runs" / "training" / "models" / "checkpoint_epoch=1.pt",
        map_location="cpu",
        weights_only=True,
    )
    assert state["optimizer"]["state"] and all(int(s["step"]) == 1 for s in state["optimizer"]["state"].values())
    assert state["model"].keys() == expected.keys()
    for name, value in state["model"].items():
        torch.testing.assert_close(value, expected[name], msg=f"{name} differs from the shipped weights at lr 0")


def test_missing_pretrained_weights_say_so(tmp_path, hippocampus_datalist):
    proc = run_bundle(
        "training",
        "--config_file", config_arg("train.json"),
        "--bundle_root", tmp_path,
        "--datalist_file", hippocampus_datalist,
        "--pretrained_weights", tmp_path / "no_such_model.pt",
        cwd=tmp_path,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no_such_model.pt" in proc.stderr and "is not a file" in proc.stderr


# --- a training never replaces trained weights unasked ----------------------------------------------------------


def test_training_leaves_the_shipped_weights_alone_and_refuses_to_replace_a_trained_run(tmp_path):
    """In a bundle with ``models/model.pt`` (as downloaded), training writes to ``runs/training/``; a second
    training there is refused before any work unless ``--resume true`` or ``--overwrite true``."""
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    shipped = bundle / "models" / "model.pt"
    shipped.write_bytes((REPO_ROOT / "models" / "model.pt").read_bytes())
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(1, 2))
    train = ["training", "--config_file", config_arg("train.json"), "--bundle_root", bundle, "--datalist_file",
             datalist, *FAST_TRAIN_ARGS]  # fmt: skip

    first = run_bundle(*train, cwd=tmp_path)
    run_model = bundle / "runs" / "training" / "models" / "model.pt"
    assert shipped.read_bytes() == (REPO_ROOT / "models" / "model.pt").read_bytes()
    assert run_model.is_file() and str(run_model.parent) in first.stdout + first.stderr  # the log says where
    trained = run_model.read_bytes()

    refused = run_bundle(*train, cwd=tmp_path, check=False)
    assert refused.returncode != 0
    root_cause = refused.stderr.rpartition("ERROR (root cause):")[2]
    assert "already holds a trained model" in root_cause and "--overwrite true" in root_cause
    assert run_model.read_bytes() == trained and "train_loss" not in refused.stdout

    replaced = run_bundle(*train, "--overwrite", "true", "--seed", "7", cwd=tmp_path)
    assert "train_loss" in replaced.stdout and run_model.read_bytes() != trained
    assert sorted(p.name for p in run_model.parent.glob("checkpoint_*.pt")) == ["checkpoint_epoch=1.pt"]
    assert shipped.read_bytes() == (REPO_ROOT / "models" / "model.pt").read_bytes()


def test_a_datalist_of_one_labelled_case_is_refused_before_training(tmp_path):
    """One case splits into 1 training / 0 validation: no model.pt could ever be saved, so the run says so."""
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(1))
    proc = run_bundle("training", "--config_file", config_arg("train.json"), "--bundle_root", tmp_path / "bundle",
                      "--datalist_file", datalist, *FAST_TRAIN_ARGS, cwd=tmp_path, check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "the split has no validation case" in proc.stderr.rpartition("ERROR (root cause):")[2]
    assert "train_loss" not in proc.stdout and not (tmp_path / "bundle" / "runs").exists()
