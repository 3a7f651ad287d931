"""Checkpoints written by ``train.json``, the one ``--resume true`` continues from and ``--pretrained_weights``.

``train#handlers`` saves ``{model, optimizer, lr_scheduler, trainer}`` each epoch as
``<ckpt_dir>/checkpoint_epoch=<N>.pt`` (ignite ``DiskSaver`` writes to a temporary file and renames it, so a
run killed while saving leaves the previous checkpoint intact). The best model by validation Dice is
``<ckpt_dir>/model.pt`` (the network's ``state_dict`` only). Both load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine
from monai.handlers import CheckpointLoader, CheckpointSaver

from .flags import as_bool

__all__ = ["latest_checkpoint", "pretrained_path", "resume_path", "TrainerCheckpointSaver", "TrainerCheckpointLoader"]

logger = logging.getLogger(__name__)

_EPOCH = re.compile(r"checkpoint_(?:epoch|iteration)?=?(\d+)\.pt$")


def latest_checkpoint(ckpt_dir: str, pattern: str = "checkpoint_*.pt") -> str | None:
    """The checkpoint in ``ckpt_dir`` with the highest epoch number (then the newest), or ``None``."""
    found = []
    for path in glob.glob(os.path.join(ckpt_dir, pattern)):
        match = _EPOCH.search(os.path.basename(path))
        found.append((int(match.group(1)) if match else -1, os.path.getmtime(path), path))
    return max(found)[2] if found else None


def resume_path(ckpt_dir: str, resume: bool | str | None) -> str | None:
    """Where ``--resume`` continues from: ``None`` when not resuming, else the latest checkpoint.

    Raises:
        FileNotFoundError: resuming was asked for but ``ckpt_dir`` holds no ``checkpoint_*.pt``.
    """
    if not as_bool(resume):
        return None
    path = latest_checkpoint(ckpt_dir)
    if path is None:
        raise FileNotFoundError(
            f"--resume true, but there is no checkpoint_*.pt in ckpt_dir {ckpt_dir!r} to resume from; "
            "run without --resume to start a new training."
        )
    logger.info(f"resuming training from {path}")
    return path


def pretrained_path(path: str | None) -> str | None:
    """The weights ``--pretrained_weights`` starts a training from: ``None`` (or ``"none"``/``""``) for none.

    The file is a network ``state_dict`` such as the shipped ``models/model.pt``; only the network is loaded, so
    the optimizer, lr schedule and epoch count start afresh (fine-tuning), unlike ``--resume``.

    Raises:
        FileNotFoundError: ``path`` is given but is not a file.
    """
    if path is None or str(path).strip().lower() in ("", "none", "null"):
        return None
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--pretrained_weights {path!r} is not a file; give a network state_dict such as models/model.pt, "
            "or leave it out to train from scratch."
        )
    logger.info(f"starting training from the weights in {path}")
    return str(path)


class TrainerCheckpointSaver:
    """``CheckpointSaver`` that also saves the engine it is attached to (under ``engine_key``).

    A config cannot put ``"trainer": "@train#trainer"`` into a handler of ``train#handlers`` (the trainer is
    built from that list: a circular reference), so the trainer is added when the handler is attached.
    All other arguments go to :class:`monai.handlers.CheckpointSaver`.
    """

    def __init__(self, save_dir: str, save_dict: Mapping[str, Any], engine_key: str = "trainer", **kwargs: Any) -> None:
        self.save_dir = save_dir
        self.save_dict = dict(save_dict)
        self.engine_key = engine_key
        self.kwargs = kwargs
        self.saver: CheckpointSaver | None = None

    def attach(self, engine: Engine) -> None:
        self.saver = CheckpointSaver(self.save_dir, {**self.save_dict, self.engine_key: engine}, **self.kwargs)
        self.saver.attach(engine)


class TrainerCheckpointLoader:
    """``CheckpointLoader`` that also restores the engine it is attached to (epoch/iteration counters).

    Used by ``--resume true``: model, optimizer, lr scheduler and trainer state come back from the
    checkpoint, and the trainer's ``max_epochs`` stays what the config says (MONAI's ``CheckpointLoader``
    keeps it), so ``--epochs`` may be raised when resuming. Arguments go to
    :class:`monai.handlers.CheckpointLoader`.
    """

    def __init__(self, load_path: str, load_dict: Mapping[str, Any], engine_key: str = "trainer", **kwargs: Any) -> None:
        self.load_path = load_path
        self.load_dict = dict(load_dict)
        self.engine_key = engine_key
        self.kwargs = kwargs
        self.loader: CheckpointLoader | None = None

    def attach(self, engine: Engine) -> None:
        self.loader = CheckpointLoader(self.load_path, {**self.load_dict, self.engine_key: engine}, **self.kwargs)
        self.loader.attach(engine)
