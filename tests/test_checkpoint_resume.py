"""``--resume`` keeps the best model of the interrupted run: a resumed training replaces ``model.pt`` only when a
validation beats the best Dice recorded in the epoch checkpoint.

Real ignite engines with the handlers ``train.json`` wires together: a trainer saving ``checkpoint_epoch=N.pt``
(:class:`TrainerCheckpointSaver`), a validation engine run after each training epoch saving the best ``model.pt``
(:class:`AtomicCheckpointSaver`), and :class:`TrainerCheckpointLoader` for the resumed run. The network's weight is
the epoch number, so each file says which epoch it holds; the validation score of each epoch is scripted, and so is
the training score the trainer keeps its best of (``state.best_metric``, as MONAI's engines do).
"""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Engine, Events

from lightmedseg_bundle.handlers import (
    BEST_MODEL_KEY,
    ENGINE_BEST_METRIC_KEYS,
    AtomicCheckpointSaver,
    TrainerCheckpointLoader,
    TrainerCheckpointSaver,
)

SCORES = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.95}  # validation score after each training epoch
TRAIN_SCORES = {1: 0.4, 2: 0.8, 3: 0.7, 4: 0.85}  # the trainer's own key metric


def _train(ckpt_dir, max_epochs: int, resume: bool = False, record_best: bool = True) -> Engine:
    net = torch.nn.Linear(2, 2)

    def step(engine, batch):
        with torch.no_grad():
            net.weight.fill_(float(engine.state.epoch))

    trainer, validator = Engine(step), Engine(lambda engine, batch: None)
    trainer.state.best_metric, trainer.state.best_metric_epoch = -1, -1  # as a MONAI engine starts

    @trainer.on(Events.EPOCH_COMPLETED)
    def _best_training_score(engine):
        epoch = engine.state.epoch
        if TRAIN_SCORES[epoch] > engine.state.best_metric:
            engine.state.best_metric, engine.state.best_metric_epoch = TRAIN_SCORES[epoch], epoch

    @validator.on(Events.EPOCH_COMPLETED)
    def _score(engine):
        engine.state.metrics["score"] = SCORES[trainer.state.epoch]

    best_saver = AtomicCheckpointSaver(
        str(ckpt_dir), {"model": net}, save_key_metric=True, key_metric_name="score", key_metric_filename="model.pt"
    )
    best_saver.attach(validator)
    if resume:
        checkpoint = sorted(ckpt_dir.glob("checkpoint_epoch=*.pt"))[-1]
        TrainerCheckpointLoader(str(checkpoint), {"model": net}, best_model_saver=best_saver).attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: validator.run([0]))
    TrainerCheckpointSaver(
        str(ckpt_dir),
        {"model": net},
        best_model_saver=best_saver if record_best else None,
        save_interval=1,
        n_saved=1,
        epoch_level=True,
    ).attach(trainer)
    trainer.run([0], max_epochs=max_epochs)
    return trainer


def _epoch_of(path) -> float:
    return float(torch.load(path, map_location="cpu", weights_only=True)["weight"][0, 0])


def test_resumed_training_replaces_model_pt_only_with_a_better_model(tmp_path, caplog):
    _train(tmp_path, max_epochs=2)  # scores 0.5, 0.9: model.pt is epoch 2
    record = torch.load(tmp_path / "checkpoint_epoch=2.pt", map_location="cpu", weights_only=True)[BEST_MODEL_KEY]
    assert [score for score, _ in record["saved"]] == [0.9]

    with caplog.at_level(logging.INFO, logger="lightmedseg_bundle"):
        _train(tmp_path, max_epochs=3, resume=True)  # epoch 3 scores 0.6
    assert _epoch_of(tmp_path / "model.pt") == 2.0, "a worse validation after resuming replaced the best model"
    assert "best model so far" in caplog.text and "0.9000" in caplog.text

    _train(tmp_path, max_epochs=4, resume=True)  # epoch 4 scores 0.95
    assert _epoch_of(tmp_path / "model.pt") == 4.0


def test_checkpoint_without_a_best_model_record_still_resumes(tmp_path, caplog):
    _train(tmp_path, max_epochs=2, record_best=False)  # as bundles before 0.5.1 wrote it
    assert BEST_MODEL_KEY not in torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)

    with caplog.at_level(logging.WARNING, logger="lightmedseg_bundle"):
        _train(tmp_path, max_epochs=3, resume=True)
    assert "has no record of the best model" in caplog.text
    assert (tmp_path / "checkpoint_epoch=3.pt").is_file()
    assert _epoch_of(tmp_path / "model.pt") == 3.0  # as the warning says: the first validation replaces it


def test_resumed_trainer_keeps_its_best_metric(tmp_path):
    _train(tmp_path, max_epochs=2)  # training scores 0.4, 0.8
    trainer = _train(tmp_path, max_epochs=3, resume=True)  # epoch 3 scores 0.7
    assert (trainer.state.best_metric, trainer.state.best_metric_epoch) == (0.8, 2)
    saved = torch.load(tmp_path / "checkpoint_epoch=3.pt", map_location="cpu", weights_only=True)["trainer"]
    assert (saved["best_metric"], saved["best_metric_epoch"]) == (0.8, 2)


def test_checkpoint_without_the_trainers_best_metric_still_resumes(tmp_path):
    _train(tmp_path, max_epochs=2)
    path = tmp_path / "checkpoint_epoch=2.pt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for key in ENGINE_BEST_METRIC_KEYS:  # as bundles up to 0.5.1 wrote it
        del checkpoint["trainer"][key]
    torch.save(checkpoint, path)

    trainer = _train(tmp_path, max_epochs=3, resume=True)
    assert trainer.state.epoch == 3
    assert (trainer.state.best_metric, trainer.state.best_metric_epoch) == (0.7, 3)  # starts afresh at epoch 3
    trainer = _train(tmp_path, max_epochs=4, resume=True)  # and the user keys were put back for the next save
    assert (trainer.state.best_metric, trainer.state.best_metric_epoch) == (0.85, 4)


def test_record_of_a_deleted_model_pt_is_dropped(tmp_path, caplog):
    _train(tmp_path, max_epochs=2)
    (tmp_path / "model.pt").unlink()

    with caplog.at_level(logging.WARNING, logger="lightmedseg_bundle"):
        _train(tmp_path, max_epochs=3, resume=True)
    assert "not in" in caplog.text and "saves a new best model" in caplog.text
    assert _epoch_of(tmp_path / "model.pt") == 3.0


def test_best_model_record_needs_a_key_metric_saver(tmp_path):
    saver = AtomicCheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(2, 2)}, save_interval=1)
    with pytest.raises(ValueError, match="save_key_metric=True"):
        saver.state_dict()


def test_resumed_training_keeps_only_its_latest_checkpoint(tmp_path):
    """The checkpoint a run resumed from goes once the run has saved its own, as each epoch's replaces the one before."""
    _train(tmp_path, max_epochs=2)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=2.pt"]
    _train(tmp_path, max_epochs=4, resume=True)
    assert sorted(p.name for p in tmp_path.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=4.pt"]
    state = torch.load(tmp_path / "checkpoint_epoch=4.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 4 and float(state["model"]["weight"][0, 0]) == 4.0
