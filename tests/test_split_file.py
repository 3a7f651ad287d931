"""The fixed train/validation split of the shipped weights, ``configs/msd_hippocampus_split.json``, and the five
cross-validation folds, ``configs/msd_hippocampus_folds.json``, that ``train.json`` selects with ``fold``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, needs_hippocampus
from monai.bundle import ConfigParser

SPLIT_FILE = CONFIGS / "msd_hippocampus_split.json"
SCRIPT = REPO_ROOT / "scripts" / "write_split_file.py"

pytestmark = needs_hippocampus


@pytest.mark.slow
def test_checked_in_split_is_the_split_train_json_makes(tmp_path):
    """The file is what ``scripts/write_split_file.py`` writes from ``dataset.json`` with ``train.json``'s
    ``val_fraction`` and ``split_seed``, i.e. the cases that training and evaluation use by default."""
    output = tmp_path / "split.json"
    cmd = [sys.executable, str(SCRIPT), "--dataset_dir", str(HIPPOCAMPUS_DIR), "--output", str(output)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "138 training / 35 validation cases" in proc.stdout
    hint = f"run: python scripts/write_split_file.py --dataset_dir {HIPPOCAMPUS_DIR}"
    assert output.read_text() == SPLIT_FILE.read_text(), f"{SPLIT_FILE.name} is stale; {hint}"
    split = json.loads(SPLIT_FILE.read_text())
    training = {case["image"] for case in split["training"]}
    validation = {case["image"] for case in split["validation"]}
    listed = {case["image"] for case in json.loads((HIPPOCAMPUS_DIR / "dataset.json").read_text())["training"]}
    assert not training & validation and training | validation == listed


def test_split_file_given_as_datalist_file_is_used_as_is(tmp_path):
    """Copied into a Task04 folder whose ``dataset.json`` lists the cases in another order, the file still gives
    ``train.json`` the shipped split."""
    task = tmp_path / "Task04_Hippocampus"
    task.mkdir()
    for folder in ("imagesTr", "labelsTr"):
        (task / folder).symlink_to(HIPPOCAMPUS_DIR / folder)
    listed = json.loads((HIPPOCAMPUS_DIR / "dataset.json").read_text())
    listed["training"].reverse()
    (task / "dataset.json").write_text(json.dumps(listed))
    (task / SPLIT_FILE.name).write_text(SPLIT_FILE.read_text())
    split = json.loads(SPLIT_FILE.read_text())

    def validation_cases(datalist_file):
        parser = ConfigParser()
        parser.read_config(str(CONFIGS / "train.json"))
        parser.update({"dataset_dir": str(task), "datalist_file": str(datalist_file)})
        return [case["image"] for case in parser.get_parsed_content("datalists")["validation"]]

    shipped = [str(task / case["image"]) for case in split["validation"]]
    assert validation_cases(task / SPLIT_FILE.name) == shipped
    assert validation_cases(task / "dataset.json") != shipped  # what the file protects against


FOLDS_FILE = CONFIGS / "msd_hippocampus_folds.json"


@pytest.mark.slow
def test_checked_in_folds_partition_all_cases_and_fold_0_is_the_shipped_split(tmp_path):
    cmd = [
        sys.executable, str(SCRIPT), "--dataset_dir", str(HIPPOCAMPUS_DIR), "--output", str(tmp_path / "split.json"),
        "--folds_output", str(tmp_path / "folds.json"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "5 folds of 35/35/35/34/34 validation cases" in proc.stdout
    assert (tmp_path / "folds.json").read_text() == FOLDS_FILE.read_text(), f"{FOLDS_FILE.name} is stale"
    folds = [fold["validation"] for fold in json.loads(FOLDS_FILE.read_text())["folds"]]
    listed = [case["image"] for case in json.loads((HIPPOCAMPUS_DIR / "dataset.json").read_text())["training"]]
    assert sorted(image for fold in folds for image in fold) == sorted(listed)  # each case validates exactly once
    shipped = json.loads(SPLIT_FILE.read_text())["validation"]
    assert folds[0] == sorted(case["image"] for case in shipped)


def _split(**overrides):
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({"bundle_root": str(REPO_ROOT), "dataset_dir": str(HIPPOCAMPUS_DIR), **overrides})
    return parser.get_parsed_content("datalists")


@pytest.mark.parametrize("fold", [2, "2"])  # "2": as `--fold 2` may arrive from the command line
def test_fold_id_selects_that_folds_validation_cases(fold):
    split = _split(fold=fold)
    expected = json.loads(FOLDS_FILE.read_text())["folds"][2]["validation"]
    assert sorted(case["image"] for case in split["validation"]) == sorted(
        str(HIPPOCAMPUS_DIR / image) for image in expected
    )
    assert len(split["training"]) == 173 - len(expected)
    assert not {c["image"] for c in split["training"]} & {c["image"] for c in split["validation"]}


def test_without_a_fold_the_default_split_is_fold_0():
    folds = json.loads(FOLDS_FILE.read_text())["folds"]
    default = _split()
    assert sorted(case["image"] for case in default["validation"]) == sorted(
        str(HIPPOCAMPUS_DIR / image) for image in folds[0]["validation"]
    )


@pytest.mark.parametrize("fold", ["all", "ALL "])
def test_fold_all_trains_on_every_case_and_monitors_fold_0(fold):
    split = _split(fold=fold)
    assert len(split["training"]) == 173 == len({case["image"] for case in split["training"]})
    assert split["validation"] == _split(fold=0)["validation"]  # trained on too: monitoring, not an estimate


def test_evaluating_fold_all_is_refused_with_what_to_do_instead():
    from lightmedseg_bundle.data import evaluation_datalist

    with pytest.raises(ValueError, match="holds none out to score.*--label_dir"):
        evaluation_datalist(str(HIPPOCAMPUS_DIR / "dataset.json"), fold="all", folds_file=str(FOLDS_FILE))


@pytest.mark.parametrize("fold, message", [(5, "from 0 to 4"), ("first", "'all' or null"), (1.5, "from 0 to 4")])
def test_a_fold_outside_the_file_is_refused(fold, message):
    with pytest.raises(RuntimeError) as error:  # MONAI's config error, caused by the bundle's ValueError
        _split(fold=fold)
    assert isinstance(error.value.__cause__, ValueError) and message in str(error.value.__cause__)


def test_folds_of_another_dataset_are_refused_by_name(tmp_path):
    task = tmp_path / "other"
    task.mkdir()
    (task / "dataset.json").write_text(json.dumps({"training": [{"image": "./a.nii.gz", "label": "./a_seg.nii.gz"}]}))
    with pytest.raises(RuntimeError) as error:
        _split(fold=0, dataset_dir=str(task))
    assert "does not list" in str(error.value.__cause__) and "hippocampus_" in str(error.value.__cause__)
