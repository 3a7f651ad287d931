"""Small helpers that the bundle configs (``configs/*.json``) call.

Each module holds one concern:

- :mod:`.datalist`: Decathlon ``dataset.json`` train/validation split, inference image lists.
- :mod:`.checkpoints`: atomic checkpoint handlers (one includes the trainer), what `--resume` and `--pretrained_weights` load.
- :mod:`.flags`: reading boolean config ids given on the command line (``--resume true``).
- :mod:`.tta`: flip test-time augmentation as an inferer wrapper.
- :mod:`.metrics_report`: per-case metrics CSV with class names and a per-class summary log.
- :mod:`.progress`: a tqdm progress bar showing the training loss.
- :mod:`.distributed`: per-rank progress lines for multi-GPU (torchrun) training.
- :mod:`.errors`: a one-line root-cause summary after the traceback of a failed run.
- :mod:`.overrides`: a warning for command-line override ids that no config defines.
"""

from . import checkpoints, datalist, distributed, errors, flags, metrics_report, overrides, progress, tta
from .checkpoints import (
    AtomicCheckpointSaver,
    TrainerCheckpointLoader,
    TrainerCheckpointSaver,
    latest_checkpoint,
    pretrained_path,
    resume_path,
)
from .datalist import image_datalist, limit_cases, train_val_split
from .distributed import log_rank_progress
from .errors import install_error_summary
from .flags import as_bool
from .metrics_report import PerCaseMetricsReport
from .overrides import warn_unknown_overrides
from .progress import LossProgressBar
from .tta import FlipTTAInferer

__all__ = [
    "AtomicCheckpointSaver",
    "FlipTTAInferer",
    "TrainerCheckpointLoader",
    "TrainerCheckpointSaver",
    "LossProgressBar",
    "PerCaseMetricsReport",
    "as_bool",
    "checkpoints",
    "datalist",
    "distributed",
    "errors",
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
    "resume_path",
    "train_val_split",
    "tta",
    "warn_unknown_overrides",
]
