"""Checkpoint saving handlers: files that a run killed while saving never leaves truncated or missing.

``train#handlers`` saves ``{model, optimizer, lr_scheduler, trainer}`` each epoch as
``<ckpt_dir>/checkpoint_epoch=<N>.pt`` (:class:`TrainerCheckpointSaver`); the best model by validation Dice is
``<ckpt_dir>/model.pt``, the network's ``state_dict`` only (:class:`AtomicCheckpointSaver` of ``validate#handlers``).

Both are written by :class:`AtomicCheckpointSaver`: MONAI's ``CheckpointSaver`` writes in place (``atomic=False``)
and ignite deletes the checkpoint being replaced *before* writing the new one, so a run killed while saving could
leave a truncated ``checkpoint_epoch=<N>.pt`` (``--resume`` then fails) or no ``model.pt`` at all. The private parts
of MONAI's and ignite's savers this needs are reached through :mod:`lightmedseg_bundle.workarounds`.

The epoch checkpoint also holds, under ``best_model``, the best validation Dice so far and the file it went to,
so that a resumed training replaces ``model.pt`` only with a better model, as the interrupted one would have; and,
in the trainer's state, the trainer's own best key metric (training Dice) and its epoch, so that its log goes on
from the interrupted run's best rather than starting again.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver

from ..workarounds import key_metric_checkpoint, replace_save_handlers, restore_saved_checkpoints, saved_checkpoints

__all__ = [
    "BEST_MODEL_KEY",
    "ENGINE_BEST_METRIC_KEYS",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "TrainerCheckpointSaver",
]

logger = logging.getLogger(__name__)

BEST_MODEL_KEY = "best_model"
"""Key of the best-model record (:meth:`AtomicCheckpointSaver.state_dict`) in an epoch checkpoint."""

ENGINE_BEST_METRIC_KEYS = ("best_metric", "best_metric_epoch")
"""A MONAI engine's best key metric and its epoch: saved and restored with the trainer's counters."""


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

    def path(self, filename: str) -> Path:
        """Where the checkpoint ignite names ``filename`` is written."""
        return self.dirname / (self.filename or filename)

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        path = self.path(filename)
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
        self._to_remove.append(self.path(filename))

    def remove_after_next_save(self, paths: list[Path]) -> None:
        """Delete ``paths`` once the next checkpoint is in place, as ignite's own :meth:`remove` requests are."""
        self._to_remove.extend(paths)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` whose files are written by :class:`AtomicDiskSaver`. Arguments as MONAI's.

    With ``save_key_metric=True`` its record of the best model, the key-metric scores it saved, their files and the
    best metric and epoch of the engine it is attached to, goes into a checkpoint through :meth:`state_dict` and
    comes back through :meth:`load_state_dict` (:class:`TrainerCheckpointSaver` and :class:`TrainerCheckpointLoader`
    with ``best_model_saver``).
    """

    def __init__(self, save_dir: str, save_dict: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(save_dir, dict(save_dict), **kwargs)
        # MONAI's in-place save handlers give way; each knows the fixed file name (model.pt), if any
        self.disk_savers: list[AtomicDiskSaver] = []
        replace_save_handlers(self, lambda filename: self._disk_saver(save_dir, filename))
        self._engine: Engine | None = None
        self._best_metric: tuple[float, int] | None = None  # restored before attach: (best_metric, its epoch)

    def _disk_saver(self, save_dir: str, filename: str | None) -> AtomicDiskSaver:
        self.disk_savers.append(AtomicDiskSaver(save_dir, filename))
        return self.disk_savers[-1]

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        self._engine = engine
        if self._best_metric is not None:
            self._restore_best_metric()

    def state_dict(self) -> dict[str, Any]:
        """``saved``: ``[score, file name]`` of the saved best models; ``best_metric``, ``best_metric_epoch``: the
        engine's (-1 before its first validation)."""
        checkpoint = self._require_key_metric()
        state = self._engine.state if self._engine is not None else None
        return {
            "saved": [[float(priority), filename] for priority, filename in saved_checkpoints(checkpoint)],
            "best_metric": float(getattr(state, "best_metric", -1)),
            "best_metric_epoch": int(getattr(state, "best_metric_epoch", -1)),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a record written by :meth:`state_dict`, unless a file it names is gone from ``save_dir``: then the
        record is dropped (with a warning) and the next validation saves a new best model."""
        checkpoint = self._require_key_metric()
        saved = [(float(priority), str(filename)) for priority, filename in state_dict["saved"]]
        missing = [name for _, name in saved if not self._saved_path(name).is_file()]
        if missing:
            logger.warning(
                f"the checkpoint records best models {missing} that are not in {self.save_dir}; "
                "the next validation saves a new best model"
            )
            return
        restore_saved_checkpoints(checkpoint, saved)
        self._best_metric = (float(state_dict["best_metric"]), int(state_dict["best_metric_epoch"]))
        if self._engine is not None:
            self._restore_best_metric()
        if saved:
            logger.info(f"best model so far: {self._saved_path(saved[-1][1])} (key metric {saved[-1][0]:.4f})")

    def _require_key_metric(self):
        checkpoint = key_metric_checkpoint(self)
        if checkpoint is None:
            raise ValueError("only a saver with save_key_metric=True has a best-model record to save or restore")
        return checkpoint

    def _saved_path(self, filename: str) -> Path:
        return self._require_key_metric().save_handler.path(filename)

    def _restore_best_metric(self) -> None:
        self._engine.state.best_metric, self._engine.state.best_metric_epoch = self._best_metric


class TrainerCheckpointSaver:
    """:class:`AtomicCheckpointSaver` that also saves the engine it is attached to (under ``engine_key``).

    A config cannot put ``"trainer": "@train#trainer"`` into a handler of ``train#handlers`` (the trainer is
    built from that list: a circular reference), so the trainer is added when the handler is attached, with its
    best key metric and epoch (:data:`ENGINE_BEST_METRIC_KEYS`, where the engine has them, as MONAI's do).

    Args:
        save_dir: folder of the checkpoints.
        save_dict: the objects to save, as for MONAI's ``CheckpointSaver``.
        best_model_saver: the validation's best-model saver (``model.pt``); its record is saved under
            :data:`BEST_MODEL_KEY`, so that ``--resume`` keeps the best model of the interrupted run.
        engine_key: key of the engine in the checkpoint.
        kwargs: the other arguments of :class:`AtomicCheckpointSaver`.
    """

    def __init__(
        self,
        save_dir: str,
        save_dict: Mapping[str, Any],
        best_model_saver: AtomicCheckpointSaver | None = None,
        engine_key: str = "trainer",
        **kwargs: Any,
    ) -> None:
        self.save_dir = save_dir
        self.save_dict = dict(save_dict)
        if best_model_saver is not None:
            self.save_dict[BEST_MODEL_KEY] = best_model_saver
        self.engine_key = engine_key
        self.kwargs = kwargs
        self.saver: AtomicCheckpointSaver | None = None

    def attach(self, engine: Engine) -> None:
        for key in ENGINE_BEST_METRIC_KEYS:
            if hasattr(engine.state, key) and key not in engine.state_dict_user_keys:
                engine.state_dict_user_keys.append(key)
        self.saver = AtomicCheckpointSaver(self.save_dir, {**self.save_dict, self.engine_key: engine}, **self.kwargs)
        self.saver.attach(engine)
        # a resumed run: the checkpoint it continues from goes once this run's first one is in place, like the ones it
        # writes itself (ignite's Checkpoint removes only files it saved)
        previous = sorted(Path(self.save_dir).glob("checkpoint_epoch=*.pt"))
        for disk_saver in self.saver.disk_savers:
            disk_saver.remove_after_next_save(previous)
