"""The unit test the MONAI model zoo runs for each bundle (``ci/unit_tests/test_<bundle>.py``): the train,
train + evaluate and inference workflows built with ``monai.bundle.ConfigWorkflow`` from the bundle's configs,
``logging.conf`` and ``metadata.json``, on synthetic data; ``initialize()``, ``check_properties()``, ``run()``,
``finalize()``. Here it also checks what each workflow left behind."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
from conftest import CONFIGS, REPO_ROOT
from monai.bundle import ConfigWorkflow

from lightmedseg_bundle.data import DEMO_SHAPE, make_demo_dataset

pytestmark = pytest.mark.slow

#: the zoo's overrides for a quick run: one epoch, a small crop, no caching and no worker processes
QUICK = {
    "epochs": 1,
    "val_interval": 1,
    "num_workers": 0,
    "cache_rate": 0.0,
    "roi_size": [32, 32, 32],
    "batch_size": 2,
    "num_samples": 1,
}


def _workflow(workflow_type: str, config_files: list[str], **override) -> ConfigWorkflow:
    return ConfigWorkflow(
        workflow_type=workflow_type,
        config_file=[str(CONFIGS / f) for f in config_files],
        logging_file=str(CONFIGS / "logging.conf"),
        meta_file=str(CONFIGS / "metadata.json"),
        **override,
    )


def _run(workflow: ConfigWorkflow, check: bool = True) -> None:
    workflow.initialize()
    if check:  # evaluate.json overrides train.json's ids, so the zoo checks the train workflow's properties only
        assert workflow.check_properties() == [], f"{workflow.workflow_type} workflow misses properties"
    workflow.run()
    workflow.finalize()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("zoo") / "data", num_cases=6).parent  # dataset.json's folder


def test_train_then_evaluate_config(dataset, tmp_path):
    override = {"bundle_root": str(tmp_path), "dataset_dir": str(dataset), **QUICK}
    _run(_workflow("train", ["train.json"], **override))
    trained = tmp_path / "runs" / "training" / "models" / "model.pt"
    assert trained.is_file()

    _run(_workflow("eval", ["train.json", "evaluate.json"], ckpt_path=str(trained), **override), check=False)
    with open(tmp_path / "eval" / "per_case_metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 1 and all(0.0 <= float(row["dice_anterior"]) <= 1.0 for row in rows)


def test_infer_config(dataset, tmp_path):
    _run(
        _workflow(
            "infer",
            ["inference.json"],
            bundle_root=str(tmp_path),
            ckpt_path=str(REPO_ROOT / "models" / "model.pt"),
            input_dir=str(dataset / "imagesTr"),
            input_pattern="demo_00[01].nii.gz",
            output_dir=str(tmp_path / "pred"),
            num_workers=0,
        )
    )
    outputs = sorted((tmp_path / "pred").rglob("*_seg.nii.gz"))
    assert [p.name for p in outputs] == ["demo_000_seg.nii.gz", "demo_001_seg.nii.gz"]
    for output in outputs:
        seg = nib.load(output)
        assert seg.shape == DEMO_SHAPE and set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2}
