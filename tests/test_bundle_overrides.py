"""Command-line override ids: the model-zoo ``--max_epochs`` works, and an id no config defines is reported."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import (
    CONFIGS,
    FAST_TRAIN_OVERRIDES,
    config_arg,
    hippocampus_cases,
    needs_hippocampus,
    run_bundle,
    write_datalist,
)

from lightmedseg_bundle.workarounds import unknown_overrides, warn_unknown_overrides


def test_unknown_override_ids_are_found_with_close_known_ids():
    argv = ["training", "--config_file", str([str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]),
            "--max_epoch", "2", "--epochs=3", "--train#trainer#max_epochs", "4", "--tta", "true",
            "--validate#no_such_part", "1", "--meta_file", "configs/metadata.json"]  # fmt: skip
    unknown = unknown_overrides(argv)
    assert set(unknown) == {"max_epoch", "validate#no_such_part"}
    assert unknown["max_epoch"][0] == "max_epochs"


def test_overrides_are_only_read_from_the_bundle_command_line():
    # monai.bundle.run(...) from Python (MONAI Label): sys.argv is not the bundle's
    assert (
        warn_unknown_overrides(["/usr/bin/monailabel", "--config_file", str(CONFIGS / "train.json"), "--x", "1"]) == {}
    )


@pytest.mark.slow
@needs_hippocampus
def test_zoo_style_max_epochs_sets_the_epochs_and_a_typo_is_reported(tmp_path):
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(1, 2))
    fast = {**FAST_TRAIN_OVERRIDES, "val_interval": 1000}
    del fast["epochs"]
    args = [arg for key, value in fast.items() for arg in (f"--{key}", str(value).replace(" ", ""))]
    proc = run_bundle(
        "training", "--config_file", config_arg("train.json"), "--bundle_root", tmp_path / "bundle",
        "--datalist_file", datalist, *args, "--max_epochs", "2", "--learning_rat", "0.1",
        cwd=tmp_path,
    )  # fmt: skip
    ckpt_dir = tmp_path / "bundle" / "runs" / "training" / "models"
    assert [p.name for p in ckpt_dir.glob("checkpoint_*.pt")] == ["checkpoint_epoch=2.pt"]
    state = torch.load(ckpt_dir / "checkpoint_epoch=2.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["max_epochs"] == 2
    assert re.search(r"WARNING.*--learning_rat .*--learning_rate", proc.stdout + proc.stderr)
