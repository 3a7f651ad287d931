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


def _write_evaluation(fold_folder, name, dice, hd95=1.5, anterior=None):
    """What ``evaluate.json`` writes into ``eval_<name>/``: ``metrics.csv`` and ``per_class_metrics.csv``."""
    folder = fold_folder / f"eval_{name}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(f"val_mean_dice,{dice}\nval_hd95,{hd95}\n")
    anterior = dice if anterior is None else anterior
    posterior = 2 * dice - anterior
    (folder / "per_class_metrics.csv").write_text(
        f"class,dice,hd95\nanterior,{anterior},{hd95}\nposterior,{posterior},{hd95}\nmean,{dice},{hd95}\n"
    )


def test_report_gives_each_fold_and_the_mean_with_its_spread(tmp_path):
    for fold, dice in ((1, 0.87), (3, 0.89)):
        for name in ("final", "final_tta", "best"):
            _write_evaluation(tmp_path / f"fold{fold}", name, dice + (0.001 if name == "final_tta" else 0))
    table = cross_validation.report(tmp_path)
    assert "| 1 | 0.8700 | 1.500 | 0.8710 | 1.500 | 0.8700 | 1.500 |" in table
    assert "| 3 | 0.8900 | 1.500 |" in table
    assert "| 0 | not evaluated |" in table
    assert "| mean of 2 | 0.8800 ± 0.0141 | 1.500 ± 0.000 | 0.8810 ± 0.0141 | 1.500 ± 0.000 |" in table


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
    for fold in (0, 1, 2, 3, 4):
        (tmp_path / f"fold{fold}").mkdir()
    for fold, epoch in ((1, 180), (2, 180), (3, 42), (4, 180)):
        torch.save({}, tmp_path / f"fold{fold}" / f"checkpoint_epoch={epoch}.pt")
    for fold in (1, 2):  # evaluated
        for name in cross_validation.EVALUATIONS:
            _write_evaluation(tmp_path / f"fold{fold}", name, 0.87)
    _write_evaluation(tmp_path / "fold4", "final", 0.87)  # trained, one evaluation still missing
    calls = []
    monkeypatch.setattr(cross_validation, "train", lambda state, fold, extra, net: calls.append(("train", fold)) or 0)
    monkeypatch.setattr(
        cross_validation, "evaluate", lambda state, fold, extra, net: calls.append(("evaluate", fold)) or 0
    )
    assert cross_validation.main(["run", "--state_dir", str(tmp_path)]) == 0
    assert calls == [("train", 3), ("evaluate", 3), ("evaluate", 4), ("train", 0), ("evaluate", 0),
                     ("train", "all")]  # fmt: skip
    (tmp_path / "foldall").mkdir()
    torch.save({}, tmp_path / "foldall" / "checkpoint_epoch=5.pt")
    assert cross_validation.pending(tmp_path, ["--epochs", "5"]) == [3, 4, 0]  # fold all trained to its last epoch
    monkeypatch.setattr(cross_validation, "train", lambda state, fold, extra, net: 1)  # a failed training stops
    assert cross_validation.main(["run", "--state_dir", str(tmp_path)]) == 1


def test_evaluate_scores_only_what_the_fold_folder_lacks(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(cross_validation, "run_logged", lambda command, log: commands.append(command) or 0)
    (tmp_path / "fold2").mkdir()
    torch.save({}, tmp_path / "fold2" / "checkpoint_epoch=180.pt")
    _write_evaluation(tmp_path / "fold2", "final", 0.87)
    assert cross_validation.evaluate(tmp_path, 2, []) == 0
    options = [dict(zip(c[4::2], c[5::2], strict=False)) for c in commands]
    assert [o["--output_dir"] for o in options] == [
        str(tmp_path / "fold2" / f"eval_{n}") for n in ("final_tta", "best")
    ]
    assert options[0]["--ckpt_path"] == str(tmp_path / "fold2" / "checkpoint_epoch=180.pt")
    assert options[0]["--tta"] == "true" and "--tta" not in options[1]
    assert options[1]["--ckpt_path"] == str(tmp_path / "fold2" / "model.pt")


def test_a_peer_network_runs_the_same_folds_in_its_own_folder_and_is_never_shipped(tmp_path, monkeypatch, capsys):
    import pytest

    commands = []
    monkeypatch.setattr(cross_validation, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(cross_validation, "run_logged", lambda command, log: commands.append(command) or 0)
    (tmp_path / "configs" / "networks").mkdir(parents=True)
    (tmp_path / "configs" / "train.json").write_text('{"max_epochs": 3}')
    (tmp_path / "configs" / "networks" / "unet.json").write_text("{}")
    monkeypatch.setattr(cross_validation, "evaluate", lambda state, fold, extra, net: 0)
    assert cross_validation.main(["run", "--network", "unet"]) == 0
    configs = {c[5] for c in commands}
    assert configs == {"['configs/train.json','configs/networks/unet.json']"}
    assert [c[c.index("--fold") + 1] for c in commands] == ["0", "1", "2", "3", "4"]  # no fold all
    assert {c[c.index("--ckpt_dir") + 1] for c in commands} == {
        str(tmp_path / "cv_unet" / f"fold{k}") for k in range(5)
    }
    for argv in (["ship", "--network", "unet"], ["run", "--network", "nonet"]):
        with pytest.raises(SystemExit):
            cross_validation.main(argv)
    assert "nonet" in capsys.readouterr().err


def _bundle_for_shipping(tmp_path, folds=(0, 1, 2, 3, 4), last_epoch=180):
    """A copy of the bundle's configs and metadata, and cross-validation state: evaluated folds, fold all's
    checkpoint at ``last_epoch`` holding a real LightMedSeg network built from ``train.json``."""
    import shutil

    from monai.bundle import ConfigParser

    root = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "configs", root / "configs")
    shutil.copy(REPO_ROOT / "metadata.json", root / "metadata.json")
    (root / "models").mkdir()
    torch.save({"old": torch.zeros(1)}, root / "models" / "model.pt")
    state = tmp_path / "cv"
    for fold in folds:
        _write_evaluation(state / f"fold{fold}", "final", 0.86 + 0.005 * fold, 1.5, anterior=0.87 + 0.005 * fold)
        _write_evaluation(state / f"fold{fold}", "final_tta", 0.865 + 0.005 * fold, 1.4)
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "train.json"))
    parser["bundle_root"] = str(root)
    network = parser.get_parsed_content("network_def")
    (state / "foldall").mkdir(parents=True)
    torch.save(
        {"model": network.state_dict(), "optimizer": {}}, state / "foldall" / f"checkpoint_epoch={last_epoch}.pt"
    )
    return root, state, network.state_dict()


def test_ship_writes_fold_alls_network_and_the_cross_validated_figures(tmp_path, capsys):
    import json

    root, state, weights = _bundle_for_shipping(tmp_path)
    assert cross_validation.ship(state, root) == 0
    shipped = torch.load(root / "models" / "model.pt", weights_only=True)
    assert shipped.keys() == weights.keys() and all(torch.equal(shipped[k], weights[k]) for k in weights)
    assert (root / "metadata.json").read_text() == (root / "configs" / "metadata.json").read_text()
    metrics = json.loads((root / "metadata.json").read_text())["eval_metrics"]
    assert metrics["mean_dice"] == 0.87 and metrics["dice_anterior"] == 0.88 and metrics["dice_posterior"] == 0.86
    assert metrics["mean_dice_tta"] == 0.875 and metrics["mean_hd95"] == 1.5 and metrics["mean_hd95_tta"] == 1.4
    assert metrics["mean_dice_fold_sd"] == 0.0079 and metrics["mean_hd95_fold_sd"] == 0.0
    assert not list((root / "models").glob(".*"))  # no temporary file left


def test_ship_refuses_an_incomplete_cross_validation_and_changes_nothing(tmp_path):
    import pytest

    for folds, last_epoch, reason in (
        ((0, 1, 2, 3), 180, "fold 4 eval_final"),  # a fold not evaluated
        ((0, 1, 2, 3, 4), 179, "epoch 179 of 180"),  # fold all short of its last epoch
    ):
        root, state, _ = _bundle_for_shipping(tmp_path / reason.replace(" ", "_"), folds, last_epoch)
        before = {p: p.read_bytes() for p in (root / "models" / "model.pt", root / "metadata.json")}
        with pytest.raises(SystemExit, match=reason):
            cross_validation.ship(state, root)
        assert {p: p.read_bytes() for p in before} == before
