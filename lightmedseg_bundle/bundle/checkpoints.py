"""Checkpoints written by ``train.json``, the one ``--resume true`` continues from and ``--pretrained_weights``.

``train#handlers`` saves ``{model, optimizer, lr_scheduler, trainer}`` each epoch as
``<ckpt_dir>/checkpoint_epoch=<N>.pt``; the best model by validation Dice is ``<ckpt_dir>/model.pt`` (the
network's ``state_dict`` only). Both load with ``torch.load(..., weights_only=True)``.

Both are written by :class:`AtomicCheckpointSaver`: MONAI's ``CheckpointSaver`` writes in place (``atomic=False``)
and ignite deletes the checkpoint being replaced *before* writing the new one, so a run killed while saving could
leave a truncated ``checkpoint_epoch=<N>.pt`` (``--resume`` then fails) or no ``model.pt`` at all.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader, CheckpointSaver

from .flags import as_bool

__all__ = [
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "TrainerCheckpointLoader",
    "TrainerCheckpointSaver",
    "latest_checkpoint",
    "pretrained_path",
    "resume_path",
]

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


class AtomicDiskSaver(BaseSaveHandler):
    """Save handler for ignite ``Checkpoint`` that never leaves a partial file or a gap without a checkpoint.

    Each checkpoint goes to a hidden temporary file in ``dirname``, is flushed to disk, then renamed over its final
    name. ignite asks to remove the checkpoint being replaced before it saves the new one; that removal waits until
    the new file is in place. A temporary file left by a killed run is deleted by the next saver of that folder.

    Args:
        dirname: folder of the checkpoints (created if missing).
        filename: a fixed file name (as ``model.pt``) used instead of the one ignite makes up.
    """

    _TMP_PREFIX = ".saving-"

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        self.dirname = Path(dirname)
        self.filename = filename
        self._to_remove: list[Path] = []
        for stale in self.dirname.glob(f"{self._TMP_PREFIX}*"):
            stale.unlink(missing_ok=True)

    def _path(self, filename: str) -> Path:
        return self.dirname / (self.filename or filename)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        path = self._path(filename)
        self.dirname.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{self._TMP_PREFIX}{path.name}.", dir=self.dirname)
        try:
            with os.fdopen(fd, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private to the user; torch.save(path) would not
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in self._to_remove:
            if old != path:
                old.unlink(missing_ok=True)
        self._to_remove = []

    def remove(self, filename: str) -> None:
        self._to_remove.append(self._path(filename))


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` whose files are written by :class:`AtomicDiskSaver`. Arguments as MONAI's."""

    def __init__(self, save_dir: str, save_dict: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(save_dir, dict(save_dict), **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:  # MONAI's in-place saver knows the fixed file name (model.pt), if any
                checkpoint.save_handler = AtomicDiskSaver(save_dir, checkpoint.save_handler.filename)


class TrainerCheckpointSaver:
    """:class:`AtomicCheckpointSaver` that also saves the engine it is attached to (under ``engine_key``).

    A config cannot put ``"trainer": "@train#trainer"`` into a handler of ``train#handlers`` (the trainer is
    built from that list: a circular reference), so the trainer is added when the handler is attached.
    All other arguments go to :class:`AtomicCheckpointSaver`.
    """

    def __init__(self, save_dir: str, save_dict: Mapping[str, Any], engine_key: str = "trainer", **kwargs: Any) -> None:
        self.save_dir = save_dir
        self.save_dict = dict(save_dict)
        self.engine_key = engine_key
        self.kwargs = kwargs
        self.saver: AtomicCheckpointSaver | None = None

    def attach(self, engine: Engine) -> None:
        self.saver = AtomicCheckpointSaver(self.save_dir, {**self.save_dict, self.engine_key: engine}, **self.kwargs)
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
