"""Per-case metrics CSV with class names and a per-class summary, for ``evaluate.json``.

MONAI's ``MetricsSaver`` writes ``<metric>_raw.csv`` (one row per case, columns ``class0, class1, ...,
mean``) and ``metrics.csv`` (the aggregated value of each metric). :class:`PerCaseMetricsReport` runs after it
and joins the raw files into one ``per_case_metrics.csv`` whose columns carry the class names
(``case, dice_anterior, dice_posterior, hd95_anterior, ...``), writes the per-class means to
``per_class_metrics.csv`` and logs them as a table.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Mapping, Sequence

import torch.distributed as dist
from ignite.engine import Engine, Events

from ..data.case_names import case_name

__all__ = ["PerCaseMetricsReport", "write_per_case_report"]

logger = logging.getLogger(__name__)


def _read_raw(path: str, delimiter: str) -> tuple[list[str], list[list[float]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    names, values = [], []
    for row in rows[1:]:
        if not row:
            continue
        names.append(row[0])
        values.append([float(v) for v in row[1:]])
    return names, values


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v) and not math.isinf(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def write_per_case_report(
    save_dir: str, metrics: Mapping[str, str], class_names: Sequence[str], delimiter: str = ","
) -> dict[str, dict[str, float]]:
    """Join ``<metric>_raw.csv`` files in ``save_dir`` into ``per_case_metrics.csv`` and ``per_class_metrics.csv``.

    Args:
        save_dir: the ``MetricsSaver`` folder.
        metrics: metric name in the evaluator -> short column prefix, e.g. ``{"val_mean_dice": "dice"}``.
        class_names: names of the classes the metrics were computed on (without background when the metric
            excluded it), in channel order.

    Returns:
        ``{prefix: {class_name: mean over cases}}`` (NaN/inf values, e.g. HD95 of an empty prediction, are skipped).
    """
    class_names = [str(c) for c in class_names]
    cases: list[str] = []
    columns: dict[str, list[float]] = {}
    summary: dict[str, dict[str, float]] = {}
    for metric, prefix in metrics.items():
        path = os.path.join(save_dir, f"{metric}_raw.csv")
        if not os.path.isfile(path):
            logger.warning(f"no {path}; is {metric!r} in MetricsSaver's metric_details?")
            continue
        names, values = _read_raw(path, delimiter)
        n_cls = len(values[0]) - 1 if values else 0  # the last column is MetricsSaver's mean over classes
        if n_cls != len(class_names):
            raise ValueError(
                f"{path} has {n_cls} class column(s) but class_names has {len(class_names)}: {class_names}"
            )
        if not cases:
            cases = names
        elif names != cases:
            raise ValueError(f"{path} lists other cases than the first metric file")
        summary[prefix] = {}
        for i, cls in enumerate(class_names):
            col = [row[i] for row in values]
            columns[f"{prefix}_{cls}"] = col
            summary[prefix][cls] = _nanmean(col)
        columns[f"{prefix}_mean"] = [row[-1] for row in values]
        summary[prefix]["mean"] = _nanmean([summary[prefix][c] for c in class_names])

    if not cases:
        return summary
    with open(os.path.join(save_dir, "per_case_metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case", "image", *columns])
        for i, image in enumerate(cases):
            writer.writerow([case_name(image), image, *(f"{col[i]:.6g}" for col in columns.values())])
    with open(os.path.join(save_dir, "per_class_metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", *summary])
        for cls in [*class_names, "mean"]:
            writer.writerow([cls, *(f"{summary[p][cls]:.6g}" for p in summary)])

    width = max(len(c) for c in [*class_names, "mean", "class"])
    lines = [f"{'class':<{width}}  " + "  ".join(f"{p:>10}" for p in summary)]
    for cls in [*class_names, "mean"]:
        lines.append(f"{cls:<{width}}  " + "  ".join(f"{summary[p][cls]:>10.4f}" for p in summary))
    logger.info(f"per-class metrics over {len(cases)} case(s):\n" + "\n".join(lines))
    logger.info(f"per-case metrics written to {os.path.join(save_dir, 'per_case_metrics.csv')}")
    return summary


class PerCaseMetricsReport:
    """Evaluator handler running :func:`write_per_case_report` when the evaluation completes.

    Put it after ``MetricsSaver`` (same ``save_dir``) in the evaluator's handlers. In a multi-GPU run only
    rank 0 (where ``MetricsSaver`` writes) does anything.
    """

    def __init__(
        self, save_dir: str, metrics: Mapping[str, str], class_names: Sequence[str], delimiter: str = ","
    ) -> None:
        self.save_dir = save_dir
        self.metrics = dict(metrics)
        self.class_names = list(class_names)
        self.delimiter = delimiter
        self.summary: dict[str, dict[str, float]] = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        self.summary = write_per_case_report(self.save_dir, self.metrics, self.class_names, self.delimiter)
