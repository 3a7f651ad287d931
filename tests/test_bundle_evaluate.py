"""Scoring one's own labelled cases with ``evaluate.json``: a folder of images and labels, or a whole list of a
datalist that holds no training list; a wrong run id names the ones that exist. With the shipped weights."""

from __future__ import annotations

import csv
import shutil

import pytest
from conftest import REPO_ROOT, config_arg, hippocampus_cases, needs_hippocampus, run_bundle, write_datalist

pytestmark = [pytest.mark.slow, needs_hippocampus]


def _evaluate(tmp_path, *args, run_id: str = "evaluating", check: bool = True):
    return run_bundle(run_id, "--config_file", config_arg("train.json", "evaluate.json"), "--bundle_root", REPO_ROOT,
                      "--num_workers", "0", "--output_dir", tmp_path / "eval", *args, cwd=tmp_path, check=check)  # fmt: skip


def _scored_cases(tmp_path) -> dict[str, float]:
    with open(tmp_path / "eval" / "per_case_metrics.csv") as f:
        return {row["case"]: float(row["dice_mean"]) for row in csv.DictReader(f)}


def test_a_folder_of_images_and_labels_is_scored_case_by_case(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    cases = hippocampus_cases(3, start=5)
    for case in cases:
        shutil.copy(case["image"], images)
        shutil.copy(case["label"], labels)
    _evaluate(tmp_path, "--input_dir", images, "--label_dir", labels)
    scored = _scored_cases(tmp_path)
    assert len(scored) == 3 and min(scored.values()) > 0.7, scored


def test_a_datalist_with_only_a_validation_list_is_scored_whole(tmp_path):
    cases = hippocampus_cases(2, start=8)
    datalist = tmp_path / "dataset.json"
    write_datalist(datalist, training=[], validation=cases)
    _evaluate(tmp_path, "--datalist_file", datalist, "--eval_list", "validation")
    assert len(_scored_cases(tmp_path)) == 2


def test_a_wrong_run_id_lists_the_run_ids_that_exist(tmp_path):
    proc = _evaluate(tmp_path, run_id="evaluate", check=False)
    assert proc.returncode != 0
    assert "their run ids: run, training, evaluating" in proc.stderr.rpartition("ERROR (root cause):")[2]
