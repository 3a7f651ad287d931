"""scripts/cross_validation.py: a fold resumes from its own folder, and the report shows every fold and the spread."""

from __future__ import annotations

import importlib.util

import torch
from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("cross_validation", REPO_ROOT / "scripts" / "cross_validation.py")
cross_validation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cross_validation)


def test_a_fold_with_a_checkpoint_resumes_through_the_bundles_resume(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(cross_validation, "run_logged", lambda command, log: commands.append(command) or 0)
    cross_validation.train(tmp_path, 2, ["--epochs", "3"])
    torch.save({"model": {}}, tmp_path / "fold2" / "checkpoint_epoch=1.pt")
    cross_validation.train(tmp_path, 2, [])
    first, again = (dict(zip(c[4::2], c[5::2], strict=True)) for c in commands)
    assert first["--fold"] == again["--fold"] == "2"
    assert first["--resume"] == "false" and again["--resume"] == "true"
    assert first["--ckpt_dir"] == again["--ckpt_dir"] == str(tmp_path / "fold2") and first["--epochs"] == "3"


def test_report_gives_each_fold_and_the_mean_with_its_spread(tmp_path):
    for fold, dice in ((1, 0.87), (3, 0.89)):
        for name in ("eval_final", "eval_best"):
            folder = tmp_path / f"fold{fold}" / name
            folder.mkdir(parents=True)
            (folder / "metrics.csv").write_text(f"val_mean_dice,{dice}\nval_hd95,1.5\n")
    table = cross_validation.report(tmp_path)
    assert "| 1 | 0.8700 | 1.500 |" in table and "| 3 | 0.8900 | 1.500 |" in table
    assert "| 0 | not trained |" in table
    assert "| mean of 2 | 0.8800 ± 0.0141 | 1.500 ± 0.0000 |" in table


def test_fold_all_trains_in_its_own_folder_and_cannot_be_evaluated(tmp_path, monkeypatch, capsys):
    import pytest

    commands = []
    monkeypatch.setattr(cross_validation, "run_logged", lambda command, log: commands.append(command) or 0)
    assert cross_validation.main(["train", "--fold", "all", "--state_dir", str(tmp_path)]) == 0
    options = dict(zip(commands[0][4::2], commands[0][5::2], strict=True))
    assert options["--fold"] == "all" and options["--ckpt_dir"] == str(tmp_path / "foldall")
    with pytest.raises(SystemExit):
        cross_validation.main(["evaluate", "--fold", "all", "--state_dir", str(tmp_path)])
    assert "no held-out cases" in capsys.readouterr().err


def test_the_log_keeps_every_record_and_drops_only_progress_bars(tmp_path):
    import sys

    output = (
        "[1/70]   1%|#    [00:00<?]\r2026-12-06 - INFO - Epoch: 1/2, Iter: 1/70 -- train_loss: 0.5 \n"
        "Epoch [1/2]: [2/70]  3%|##   , loss=0.5 [00:01<02:54]\rEpoch [1/2]: [2/70]  3%|##   , loss=0.4 [00:01<02:54]"
        "2026-12-06 - INFO - Epoch: 1/2, Iter: 2/70 -- train_loss: 0.4 \n"
        "2026-12-06 - ignite.engine.engine.SupervisedTrainer - INFO - Epoch[1] Complete. Time taken: 00:00:14.307\n"
    )
    log = tmp_path / "train.log"
    assert cross_validation.run_logged([sys.executable, "-c", f"import sys; sys.stdout.write({output!r})"], log) == 0
    kept = [line for line in log.read_text().splitlines() if line and not line.startswith("$ ")]
    assert kept == [
        "2026-12-06 - INFO - Epoch: 1/2, Iter: 1/70 -- train_loss: 0.5 ",
        "2026-12-06 - INFO - Epoch: 1/2, Iter: 2/70 -- train_loss: 0.4 ",
        "2026-12-06 - ignite.engine.engine.SupervisedTrainer - INFO - Epoch[1] Complete. Time taken: 00:00:14.307",
    ]


def test_run_goes_on_with_started_folds_first_then_the_rest_then_fold_all(tmp_path, monkeypatch):
    done = {1: True, 2: True}  # evaluated
    for fold in (0, 1, 2, 3):
        (tmp_path / f"fold{fold}").mkdir()
    for fold, epoch in ((1, 180), (2, 180), (3, 42)):
        torch.save({}, tmp_path / f"fold{fold}" / f"checkpoint_epoch={epoch}.pt")
    for fold in done:
        (tmp_path / f"fold{fold}" / "eval_final").mkdir()
        (tmp_path / f"fold{fold}" / "eval_final" / "metrics.csv").write_text("val_mean_dice,0.87\nval_hd95,1.6\n")
    calls = []
    monkeypatch.setattr(cross_validation, "train", lambda state, fold, extra: calls.append(("train", fold)) or 0)
    monkeypatch.setattr(cross_validation, "evaluate", lambda state, fold, extra: calls.append(("evaluate", fold)) or 0)
    assert cross_validation.main(["run", "--state_dir", str(tmp_path)]) == 0
    assert calls == [("train", 3), ("evaluate", 3), ("train", 0), ("evaluate", 0), ("train", 4), ("evaluate", 4),
                     ("train", "all")]  # fmt: skip
    (tmp_path / "foldall").mkdir()
    torch.save({}, tmp_path / "foldall" / "checkpoint_epoch=5.pt")
    assert cross_validation.pending(tmp_path, ["--epochs", "5"]) == [3, 0, 4]  # fold all trained to its last epoch
    monkeypatch.setattr(cross_validation, "train", lambda state, fold, extra: 1)  # a failed training stops the run
    assert cross_validation.main(["run", "--state_dir", str(tmp_path)]) == 1
