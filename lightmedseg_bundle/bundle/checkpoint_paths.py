"""Which checkpoint a training starts from: ``--resume true`` (the latest epoch checkpoint) or ``--pretrained_weights``.

``train#handlers`` saves ``{model, optimizer, lr_scheduler, trainer}`` each epoch as
``<ckpt_dir>/checkpoint_epoch=<N>.pt``; the best model by validation Dice is ``<ckpt_dir>/model.pt`` (the
network's ``state_dict`` only). Both load with ``torch.load(..., weights_only=True)``; the handlers that write and
read them are in :mod:`lightmedseg_bundle.handlers` (``checkpoint_saver``, ``checkpoint_loader``).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re

import torch

from ..workarounds import as_bool

__all__ = ["checkpoints_newest_first", "latest_checkpoint", "pretrained_path", "resume_path"]

logger = logging.getLogger(__name__)

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
