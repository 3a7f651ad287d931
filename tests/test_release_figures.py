"""The model card's figures: training curves from TensorBoard event files, and a prediction overlay.

``scripts/plot_training_curves.py`` runs on event files written here with the tags and steps that
``train.json``'s ``TensorBoardStatsHandler``s use (``train_loss`` per iteration, ``train_mean_dice`` per epoch in
one file, ``val_mean_dice`` per validation epoch in another); ``scripts/plot_prediction_overlay.py`` runs the
bundle's inference on the first validation case with the shipped weights.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, needs_hippocampus
from matplotlib.image import imread

SCRIPTS = REPO_ROOT / "scripts"


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_training_logs(
    logdir: Path, epochs: int = 4, iterations: int = 5, val_interval: int = 2, clock: float = 1e6, gain: float = 0.0
) -> None:
    """Event files as a training run writes them: trainer and validator have a writer each."""
    from torch.utils.tensorboard import SummaryWriter

    train, val = SummaryWriter(str(logdir), filename_suffix=".1"), SummaryWriter(str(logdir), filename_suffix=".0")
    for epoch in range(1, epochs + 1):
        for i in range(iterations):
            clock += 1
            train.add_scalar("train_loss", 2.0 / epoch - 0.01 * i, (epoch - 1) * iterations + i + 1, walltime=clock)
        clock += 1
        if epoch % val_interval == 0:
            dice = 0.2 * epoch - (0.45 if epoch == epochs else 0) + gain
            val.add_scalar("val_mean_dice", dice, epoch, walltime=clock)
        clock += 1
        train.add_scalar("train_mean_dice", 0.2 * epoch, epoch, walltime=clock)
    train.close()
    val.close()


def test_training_curves_from_tensorboard_event_files(tmp_path, capsys):
    plot_training_curves = _load_script("plot_training_curves")
    _write_training_logs(tmp_path / "eval")
    output = tmp_path / "figures" / "training_curves.png"
    assert plot_training_curves.main(["--logdir", str(tmp_path / "eval"), "--output", str(output)]) == 0
    image = imread(output)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 800
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 4 and summary["iterations"] == 20
    assert summary["best_val_epoch"] == 2 and summary["best_val_mean_dice"] == pytest.approx(0.4)
    assert summary["last_val_epoch"] == 4 and summary["last_val_mean_dice"] == pytest.approx(0.35)
    # iterations go to the epoch whose end event follows them: the per-epoch mean loss is exact
    scalars = plot_training_curves.read_scalars(tmp_path / "eval")
    _, _, epochs, means = plot_training_curves.epoch_losses(scalars)
    np.testing.assert_array_equal(epochs, [1, 2, 3, 4])
    np.testing.assert_allclose(means, [2.0 / e - 0.02 for e in range(1, 5)], rtol=1e-5)
    _, _, _, by_count = plot_training_curves.epoch_losses(scalars, iterations_per_epoch=5)
    np.testing.assert_allclose(by_count, means)


def test_training_curves_of_consecutive_stages_are_numbered_on(tmp_path, capsys):
    """A fine-tuning stage after a first training: one curve, epochs and iterations continued, gaps not timed."""
    plot_training_curves = _load_script("plot_training_curves")
    _write_training_logs(tmp_path / "stage1")
    _write_training_logs(tmp_path / "stage2", epochs=3, clock=5e6, gain=0.1)
    output = tmp_path / "curves.png"
    args = ["--logdir", str(tmp_path / "stage1"), str(tmp_path / "stage2"), "--output", str(output)]
    assert plot_training_curves.main(args) == 0 and output.is_file()
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 7 and summary["iterations"] == 35 and summary["stage_starts"] == [4]
    assert summary["best_val_epoch"] == 6 and summary["best_val_mean_dice"] == pytest.approx(0.5)
    assert summary["training_time_s"] == 27 + 20  # each stage from its first to its last event


def test_training_curves_without_event_files_say_so(tmp_path, capsys):
    plot_training_curves = _load_script("plot_training_curves")
    assert plot_training_curves.main(["--logdir", str(tmp_path), "--output", str(tmp_path / "x.png")]) == 1
    assert "no TensorBoard event files" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@needs_hippocampus
@pytest.mark.skipif(not (REPO_ROOT / "models" / "model.pt").is_file(), reason="models/model.pt absent")
def test_prediction_overlay_of_the_first_validation_case(tmp_path, capsys):
    plot_prediction_overlay = _load_script("plot_prediction_overlay")
    output = tmp_path / "prediction_overlay.png"
    assert plot_prediction_overlay.main(["--output", str(output)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["case"] == "hippocampus_034"  # the first case of the fixed validation split
    assert 0.0 <= result["dice_anterior"] <= 1.0 and 0.0 <= result["dice_posterior"] <= 1.0
    image = imread(output)
    assert image.ndim == 3 and image.shape[0] >= 600  # three rows of slices
