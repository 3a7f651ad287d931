"""The QC report of a cohort inference sharded over processes and nodes (``configs/multi_gpu_inference.json``).

In a ``torchrun`` run every rank predicts its own shard of the datalist (a ``DistributedSampler`` with
``even_divisible=False``: rank ``r`` of ``W`` gets cases ``r, r + W, r + 2W, ...``), and each rank's
:class:`~.qc_report.QCReport` (``configs/inference_qa.json``) would rewrite the same ``qc_report.csv`` with its own
rows only. :class:`DistributedQCReport` sends each rank's rows to a file of its own, ``qc_report.rank<R>.csv``
(rewritten after every case, as the single-process CSV is, so a crashed run keeps them), and when every rank is done
(a barrier), rank 0 merges them into ``qc_report.csv`` in datalist order, written atomically, and removes the
per-rank files: the same file as a single-process run writes. The per-case JSON (and PNG) files need nothing: each
case is written by the one rank that predicts it.

Rank 0 reads the other ranks' files, so on several nodes ``output_dir`` must be on a file system that every node
sees (as the label maps must be, to be found in one place).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist
from ignite.engine import Engine, Events

from ..handlers.rank_progress import rank_and_world
from .atomic_output import atomic_path
from .qc_report import QCReport

__all__ = ["DistributedQCReport", "merge_qc_csv", "rank_csv_path"]

logger = logging.getLogger(__name__)


def rank_csv_path(csv_path: str | os.PathLike, rank: int) -> Path:
    """The CSV of one rank beside the run's CSV: ``qc_report.csv`` -> ``qc_report.rank<rank>.csv``."""
    path = Path(csv_path)
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def merge_qc_csv(
    csv_path: str | os.PathLike,
    parts: Sequence[str | os.PathLike],
    case_order: Sequence[str] = (),
    remove_parts: bool = True,
) -> int:
    """Merge the per-rank CSVs ``parts`` into ``csv_path`` (written atomically); returns the number of rows.

    Rows are sorted by the position of their ``image`` in ``case_order`` (absolute paths compared); rows whose image
    is not listed follow, in the order of ``parts``. Columns are the union of the parts' columns, in order of first
    appearance, as :class:`~.qc_report.QCReport` writes them. A missing part is logged and skipped; with
    ``remove_parts`` the parts are deleted once the merged file is in place.
    """
    position = {os.path.abspath(image): index for index, image in enumerate(case_order)}
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for part in parts:
        if not os.path.isfile(part):
            logger.warning(f"QC report: {part} is missing, the merged {csv_path} lacks that rank's cases")
            continue
        with open(part, newline="") as f:
            reader = csv.DictReader(f)
            columns += [c for c in reader.fieldnames or () if c not in columns]
            rows += list(reader)
    unlisted = len(position)
    rows.sort(key=lambda row: position.get(os.path.abspath(row.get("image", "")), unlisted))  # stable sort
    with atomic_path(csv_path) as partial, open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    if remove_parts:
        for part in parts:
            Path(part).unlink(missing_ok=True)
    return len(rows)


class DistributedQCReport:
    """
    Shards the :class:`~.qc_report.QCReport` handlers among ``handlers`` over the ranks of a ``torchrun`` run
    (see the module docstring). ``attach(engine)`` points each report's CSV at ``<csv>.rank<R>.csv`` and, on the
    engine's ``COMPLETED`` event, waits for every rank (a barrier on the default process group), after which rank 0
    merges the parts into the report's CSV. Without a process group, or without a ``QCReport`` among ``handlers``
    (``qc_report`` false, or no ``inference_qa.json``), it does nothing.

    Args:
        handlers: the evaluator's handlers (the config's ``handlers``), the very objects attached to it.
        datalist: the inference datalist, whose order the merged CSV follows.
        image_key: key of the image path in the datalist's items.
    """

    def __init__(
        self, handlers: Iterable[Any], datalist: Sequence[Mapping[Hashable, Any]] = (), image_key: Hashable = "image"
    ) -> None:
        self.reports = [h for h in handlers if isinstance(h, QCReport)]
        self.case_order = [str(item[image_key]) for item in datalist]
        self.csv_paths: list[Path] = []

    def attach(self, engine: Engine) -> None:
        rank, world = rank_and_world()
        if world == 1 or not self.reports:
            return
        self.csv_paths = [report.csv_path for report in self.reports]
        for report, csv_path in zip(self.reports, self.csv_paths, strict=True):
            report.csv_path = rank_csv_path(csv_path, rank)
        engine.add_event_handler(Events.COMPLETED, self.merge)

    def merge(self, engine: Engine | None = None) -> None:
        """Wait for every rank; then rank 0 merges each report's per-rank CSVs."""
        rank, world = rank_and_world()
        dist.barrier()  # every rank has written its last row
        if rank != 0:
            return
        for csv_path in self.csv_paths:
            parts = [rank_csv_path(csv_path, r) for r in range(world)]
            count = merge_qc_csv(csv_path, parts, self.case_order)
            logger.info(f"QC report: {count} row(s) of {world} ranks merged into {csv_path}")
