"""Checkpoints written by ``train.json``, the one ``--resume true`` continues from and ``--pretrained_weights``.

``train#handlers`` saves ``{model, optimizer, lr_scheduler, trainer}`` each epoch as
``<ckpt_dir>/checkpoint_epoch=<N>.pt``; the best model by validation Dice is ``<ckpt_dir>/model.pt`` (the
network's ``state_dict`` only). Both load with ``torch.load(..., weights_only=True)``.

Both are written by :class:`AtomicCheckpointSaver`: MONAI's ``CheckpointSaver`` writes in place (``atomic=False``)
and ignite deletes the checkpoint being replaced *before* writing the new one, so a run killed while saving could
leave a truncated ``checkpoint_epoch=<N>.pt`` (``--resume`` then fails) or no ``model.pt`` at all.

The epoch checkpoint also holds, under ``best_model``, the best validation Dice so far and the file it went to,
so that a resumed training replaces ``model.pt`` only with a better model, as the interrupted one would have; and,
in the trainer's state, the trainer's own best key metric (training Dice) and its epoch, so that its log goes on
from the interrupted run's best rather than starting again.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointLoader, CheckpointSaver

from .flags import as_bool

__all__ = [
    "BEST_MODEL_KEY",
    "ENGINE_BEST_METRIC_KEYS",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "TrainerCheckpointLoader",
    "TrainerCheckpointSaver",
    "checkpoints_newest_first",
    "latest_checkpoint",
    "pretrained_path",
    "resume_path",
]

logger = logging.getLogger(__name__)

BEST_MODEL_KEY = "best_model"
"""Key of the best-model record (:meth:`AtomicCheckpointSaver.state_dict`) in an epoch checkpoint."""

ENGINE_BEST_METRIC_KEYS = ("best_metric", "best_metric_epoch")
"""A MONAI engine's best key metric and its epoch: saved and restored with the trainer's counters."""

_EPOCH = re.compile(r"checkpoint_(?:epoch|iteration)?=?(\d+)\.pt$")


def checkpoints_newest_first(ckpt_dir: str, pattern: str = "checkpoint_*.pt") -> list[str]:
    """The checkpoints in ``ckpt_dir``, highest epoch number (then newest) first."""
    found = []
    for path in glob.glob(os.path.join(ckpt_dir, pattern)):
        match = _EPOCH.search(os.path.basename(path))
        found.append((int(match.group(1)) if match else -1, os.path.getmtime(path), path))
    return [path for *_, path in sorted(found, reverse=True)]


def latest_checkpoint(ckpt_dir: str, pattern: str = "checkpoint_*.pt") -> str | None:
    """The checkpoint in ``ckpt_dir`` with the highest epoch number (then the newest), or ``None``."""
    found = checkpoints_newest_first(ckpt_dir, pattern)
    return found[0] if found else None


def resume_path(
    ckpt_dir: str, resume: bool | str | None, overwrite: bool | str | None = False, output_dir: str | None = None
) -> str | None:
    """Where a training starts: ``None`` for a new run, else the latest checkpoint to resume from.

    A new run never replaces a trained model unasked: if ``ckpt_dir`` already holds a ``model.pt`` or an epoch
    checkpoint, it is refused unless ``overwrite`` is true (then the old epoch checkpoints are removed, so that a
    later ``--resume true`` cannot pick up the old run's, and ``model.pt`` is replaced at the first validation).
    The log says where ``model.pt``, the checkpoints and the TensorBoard events (``output_dir``) go.

    When resuming, a checkpoint that does not load (damaged on disk) is skipped with a warning for the next older
    one (the checkpoint a run resumed from stays beside the new ones).

    Raises:
        FileNotFoundError: resuming was asked for but ``ckpt_dir`` holds no ``checkpoint_*.pt``.
        RuntimeError: resuming was asked for but none of the checkpoints loads.
        FileExistsError: a new run (no resume, no overwrite) would replace the trained model in ``ckpt_dir``.
    """
    where = f"model.pt (best validation Dice) and epoch checkpoints go to {ckpt_dir}"
    logger.info(where + (f"; TensorBoard events to {output_dir}" if output_dir else ""))
    if as_bool(resume):
        candidates = checkpoints_newest_first(ckpt_dir)
        if not candidates:
            raise FileNotFoundError(
                f"--resume true, but there is no checkpoint_*.pt in ckpt_dir {ckpt_dir!r} to resume from; "
                "run without --resume to start a new training."
            )
        for path in candidates:
            try:  # a damaged file (disk error, copied half) must not stop the run while an older one is intact
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - any failure to load means: not this one
                logger.warning(f"cannot resume from {path} ({type(error).__name__}: {error}); trying an older one")
                continue
            logger.info(f"resuming training from {path}")
            return path
        raise RuntimeError(f"--resume true, but no checkpoint in ckpt_dir {ckpt_dir!r} loads: {', '.join(candidates)}")
    existing = sorted(glob.glob(os.path.join(ckpt_dir, "checkpoint_*.pt")))
    model = os.path.join(ckpt_dir, "model.pt")
    if os.path.isfile(model):
        existing.append(model)
    if existing and not as_bool(overwrite):
        raise FileExistsError(
            f"ckpt_dir {ckpt_dir!r} already holds a trained model ({', '.join(map(os.path.basename, existing))}) "
            "that a new training would replace. Give the run its own folder (--run_dir runs/<name>), continue that "
            "run with --resume true, or replace it with --overwrite true."
        )
    for path in existing:
        logger.warning(f"--overwrite true: {path} is replaced by this run")
        if path != model:
            with contextlib.suppress(FileNotFoundError):  # another rank of a distributed run removed it first
                os.remove(path)
    return None


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


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` whose files are written by :class:`AtomicDiskSaver`. Arguments as MONAI's.

    With ``save_key_metric=True`` its record of the best model, the key-metric scores it saved, their files and the
    best metric and epoch of the engine it is attached to, goes into a checkpoint through :meth:`state_dict` and
    comes back through :meth:`load_state_dict` (:class:`TrainerCheckpointSaver` and :class:`TrainerCheckpointLoader`
    with ``best_model_saver``).
    """

    def __init__(self, save_dir: str, save_dict: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(save_dir, dict(save_dict), **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:  # MONAI's in-place saver knows the fixed file name (model.pt), if any
                checkpoint.save_handler = AtomicDiskSaver(save_dir, checkpoint.save_handler.filename)
        self._engine: Engine | None = None
        self._best_metric: tuple[float, int] | None = None  # restored before attach: (best_metric, its epoch)

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
            "saved": [[float(priority), filename] for priority, filename in checkpoint.state_dict()["_saved"]],
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
        checkpoint.load_state_dict({"_saved": saved})
        self._best_metric = (float(state_dict["best_metric"]), int(state_dict["best_metric_epoch"]))
        if self._engine is not None:
            self._restore_best_metric()
        if saved:
            logger.info(f"best model so far: {self._saved_path(saved[-1][1])} (key metric {saved[-1][0]:.4f})")

    def _require_key_metric(self):
        if self._key_metric_checkpoint is None:
            raise ValueError("only a saver with save_key_metric=True has a best-model record to save or restore")
        return self._key_metric_checkpoint

    def _saved_path(self, filename: str) -> Path:
        return self._key_metric_checkpoint.save_handler.path(filename)

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
