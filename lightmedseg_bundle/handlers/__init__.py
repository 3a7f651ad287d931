"""Ignite/MONAI event handlers of the bundle's engines (the counterpart of :mod:`monai.handlers`).

Each module holds one concern:

- :mod:`.checkpoint_saver`: atomic checkpoint saving (one saver includes the trainer and the best-model record).
- :mod:`.checkpoint_loader`: resuming (``--resume true``): model, optimizer, lr scheduler, trainer and best model.
- :mod:`.metrics_report`: per-case metrics CSV with class names and a per-class summary log.
- :mod:`.progress`: a tqdm progress bar showing the training loss, epoch N/M with an ETA, closing summaries.
- :mod:`.rank_progress`: per-rank progress lines for multi-GPU (torchrun) training.
"""

from .checkpoint_loader import TrainerCheckpointLoader
from .checkpoint_saver import (
    BEST_MODEL_KEY,
    ENGINE_BEST_METRIC_KEYS,
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    TrainerCheckpointSaver,
)
from .metrics_report import PerCaseMetricsReport, write_per_case_report
from .progress import LossProgressBar, RunSummary, TrainingSummary
from .rank_progress import log_rank_progress

__all__ = [
    "BEST_MODEL_KEY",
    "ENGINE_BEST_METRIC_KEYS",
    "AtomicCheckpointSaver",
    "AtomicDiskSaver",
    "LossProgressBar",
    "PerCaseMetricsReport",
    "RunSummary",
    "TrainerCheckpointLoader",
    "TrainerCheckpointSaver",
    "TrainingSummary",
    "log_rank_progress",
    "write_per_case_report",
]
