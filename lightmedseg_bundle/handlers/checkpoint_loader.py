"""Checkpoint loading handler for ``--resume true``: the trainer's counters and best-model record come back too."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from .checkpoint_saver import BEST_MODEL_KEY, AtomicCheckpointSaver

__all__ = ["TrainerCheckpointLoader"]

logger = logging.getLogger(__name__)


class TrainerCheckpointLoader:
    """``CheckpointLoader`` that also restores the engine it is attached to (epoch/iteration counters).

    Used by ``--resume true``: model, optimizer, lr scheduler and trainer state come back from the
    checkpoint, and the trainer's ``max_epochs`` stays what the config says (MONAI's ``CheckpointLoader``
    keeps it), so ``--epochs`` may be raised when resuming.

    Args:
        load_path: the checkpoint.
        load_dict: the objects to restore, as for MONAI's ``CheckpointLoader``.
        best_model_saver: the validation's best-model saver, given the record saved by
            :class:`TrainerCheckpointSaver`. A checkpoint without one (written before bundle 0.5.1) still
            resumes, with a warning that the next validation replaces ``model.pt`` whatever its Dice.
        engine_key: key of the engine in the checkpoint.
        kwargs: the other arguments of :class:`monai.handlers.CheckpointLoader`.
    """

    def __init__(
        self,
        load_path: str,
        load_dict: Mapping[str, Any],
        best_model_saver: AtomicCheckpointSaver | None = None,
        engine_key: str = "trainer",
        **kwargs: Any,
    ) -> None:
        self.load_path = load_path
        self.load_dict = dict(load_dict)
        self.best_model_saver = best_model_saver
        self.engine_key = engine_key
        self.kwargs = kwargs

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        checkpoint = torch.load(self.load_path, map_location="cpu", weights_only=True, mmap=True)
        load_dict = {**self.load_dict, self.engine_key: engine}
        if self.best_model_saver is not None:
            if BEST_MODEL_KEY in checkpoint:
                load_dict[BEST_MODEL_KEY] = self.best_model_saver
            else:
                logger.warning(
                    f"{self.load_path} has no record of the best model so far (written before bundle 0.5.1): "
                    "the next validation replaces model.pt whatever its Dice"
                )
        # an older checkpoint lacks the trainer's best metric: its counters still resume, the best metric starts afresh
        user_keys = engine.state_dict_user_keys
        absent = [key for key in user_keys if key not in checkpoint.get(self.engine_key, {})]
        for key in absent:
            user_keys.remove(key)
        loader = CheckpointLoader(self.load_path, load_dict, **self.kwargs)
        loader.logger = engine.logger
        try:
            loader(engine)
        finally:
            user_keys.extend(absent)
