"""Task overlays (configs/tasks/) and experiment tracking, through the real bundle commands."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import (
    BRATS_DIR,
    FAST_TRAIN_ARGS,
    config_arg,
    hippocampus_cases,
    needs_brats,
    needs_hippocampus,
    run_bundle,
    write_datalist,
)

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real


@needs_brats
def test_brats_overlay_trains_evaluates_and_infers_on_real_two_channel_data(tmp_path):
    """BraTS 2013 labels -> TC/WT/ET regions, sigmoid outputs; 2 real cases, tiny ROI, no caching."""
    listed = json.loads((BRATS_DIR / "dataset.json").read_text())["training"]
    cases = [{k: str((BRATS_DIR / case[k]).resolve()) for k in ("image", "label")} for case in listed[:2]]
    datalist = write_datalist(tmp_path / "dataset.json", cases[:1], validation=cases[1:])
    bundle_root = tmp_path / "bundle"
    small = [
        "--bundle_root", bundle_root,
        "--datalist_file", datalist,
        "--in_channels", "2",
        "--label_scheme", "brats2013",
        "--roi_size", "[32,32,32]",
        "--cache_rate", "0",
        "--num_workers", "0",
        "--overlap", "0",
        "--sw_batch_size", "8",
    ]  # fmt: skip
    proc = run_bundle(
        "training",
        "--config_file", config_arg("train.json", "tasks/brats.json"),
        *small, "--epochs", "1", "--val_interval", "1", "--warmup_epochs", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert re.search(r"val_mean_dice: \d", proc.stdout)
    assert torch.load(
        bundle_root / "runs" / "training" / "models" / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True
    )

    output_dir = tmp_path / "eval"
    run_bundle(
        "--config_file", config_arg("train.json", "evaluate.json", "tasks/brats.json"),
        *small, "--ckpt_dir", bundle_root / "runs" / "training" / "models", "--output_dir", output_dir,
        cwd=tmp_path,
    )  # fmt: skip
    header = (output_dir / "per_case_metrics.csv").read_text().splitlines()[0]
    for region in ("TC", "WT", "ET"):
        assert f"dice_{region}" in header and f"hd95_{region}" in header

    pred_dir = tmp_path / "pred"
    image = cases[1]["image"]
    test_list = write_datalist(tmp_path / "test.json", training=[], test=[image])
    run_bundle(
        "--config_file", config_arg("inference.json", "tasks/brats.json"),
        *small, "--ckpt_dir", bundle_root / "runs" / "training" / "models", "--datalist_file", test_list,
        "--output_dir", pred_dir, "--separate_folder", "False",
        cwd=tmp_path,
    )  # fmt: skip
    source = nib.load(image)
    pred = nib.load(pred_dir / (Path(image).name[: -len(".nii.gz")] + "_seg.nii.gz"))
    assert pred.shape == (*source.shape[:3], 3)  # TC, WT, ET, channel last like the input
    np.testing.assert_allclose(pred.affine, source.affine, atol=1e-5)
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1}


@needs_hippocampus
@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow (e.g. mlflow-skinny) not installed")
def test_training_with_mlflow_tracking(tmp_path):
    """``--tracking mlflow``: MONAI's default settings, a local SQLite store under output_dir."""
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(1, 2))
    output_dir = tmp_path / "eval"
    run_bundle(
        "training",
        "--config_file", config_arg("train.json"),
        "--bundle_root", tmp_path / "bundle",
        "--output_dir", output_dir,
        "--datalist_file", datalist,
        "--tracking", "mlflow",
        "--experiment_name", "lightmedseg_test",
        *FAST_TRAIN_ARGS,
        cwd=tmp_path,
    )  # fmt: skip
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{output_dir / 'mlruns.db'}")
    experiment = mlflow.get_experiment_by_name("lightmedseg_test")
    assert experiment is not None
    runs = mlflow.search_runs(experiment_ids=[experiment.experiment_id], output_format="list")
    assert runs and "train_loss" in runs[0].data.metrics
    assert list(output_dir.glob("config_*.json"))  # the executed config, saved as an artifact
