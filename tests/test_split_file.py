"""The fixed train/validation split of the shipped weights, ``configs/msd_hippocampus_split.json``."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, needs_hippocampus
from monai.bundle import ConfigParser

SPLIT_FILE = CONFIGS / "msd_hippocampus_split.json"
SCRIPT = REPO_ROOT / "scripts" / "write_split_file.py"

pytestmark = needs_hippocampus


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
