"""Small helpers that the bundle configs (``configs/*.json``) call.

Each module holds one concern:

- :mod:`.datalist`: Decathlon ``dataset.json`` train/validation split, inference image lists.
- :mod:`.checkpoints`: atomic checkpoint handlers (one includes the trainer), what `--resume` and `--pretrained_weights` load.
- :mod:`.flags`: reading boolean config ids given on the command line (``--resume true``).
- :mod:`.tta`: flip test-time augmentation as an inferer wrapper.
- :mod:`.metrics_report`: per-case metrics CSV with class names and a per-class summary log.
- :mod:`.progress`: a tqdm progress bar showing the training loss, epoch N/M with an ETA, closing summaries.
- :mod:`.distributed`: per-rank progress lines for multi-GPU (torchrun) training.
- :mod:`.errors`: a one-line root-cause summary after the traceback of a failed run.
- :mod:`.overrides`: a warning for command-line override ids that no config defines.
- :mod:`.quiet`: MONAI messages a user cannot act on, silenced (each names what it silences).
"""

from . import checkpoints, datalist, distributed, errors, flags, metrics_report, overrides, progress, quiet, tta
from .checkpoints import (
    AtomicCheckpointSaver,
    TrainerCheckpointLoader,
    TrainerCheckpointSaver,
    latest_checkpoint,
    pretrained_path,
    resume_path,
)
from .datalist import evaluation_datalist, image_datalist, limit_cases, train_val_split
from .distributed import log_rank_progress
from .errors import install_error_summary
from .flags import as_bool
from .metrics_report import PerCaseMetricsReport
from .overrides import warn_unknown_overrides
from .progress import LossProgressBar, RunSummary, TrainingSummary
from .quiet import silence_known_harmless_messages
from .tta import FlipTTAInferer

__all__ = [
    "AtomicCheckpointSaver",
    "FlipTTAInferer",
    "TrainerCheckpointLoader",
    "TrainerCheckpointSaver",
    "LossProgressBar",
    "PerCaseMetricsReport",
    "RunSummary",
    "TrainingSummary",
    "as_bool",
    "checkpoints",
    "datalist",
    "distributed",
    "errors",
    "evaluation_datalist",
    "flags",
    "image_datalist",
    "install_error_summary",
    "latest_checkpoint",
    "limit_cases",
    "log_rank_progress",
    "metrics_report",
    "overrides",
    "pretrained_path",
    "progress",
    "quiet",
    "resume_path",
    "silence_known_harmless_messages",
    "train_val_split",
    "tta",
    "warn_unknown_overrides",
]
