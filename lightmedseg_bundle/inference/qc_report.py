"""Per-case QC report of an inference run: a JSON per case, one CSV for the run, optional PNG overlays.

For each case (``configs/inference_qa.json``, ``qc_report``), measured on the saved prediction in the input's
geometry: the volume (mL, from the affine's voxel size), voxel count, number of 26-connected components and
volume of the largest component of every predicted region; an uncertainty score (flip disagreement or
MC-dropout variance, see :mod:`.uncertainty`); raw intensity statistics per channel; and flags:

- ``empty_prediction``: no foreground at all; ``empty_<name>``: one region is missing while others are present;
- ``constant_intensity``, ``intensity_out_of_range``, ``intensity_outliers``: see :func:`.qc_metrics.intensity_flags`;
- ``high_uncertainty``: the uncertainty score is above ``uncertainty_threshold`` (when one is given).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, LoadImage
from monai.utils import ImageMetaKey

from ..data.case_names import case_name
from .atomic_output import atomic_path
from .engine_outputs import case_outputs
from .geometry import invert_to_input
from .output_layout import case_output_path
from .qc_metrics import intensity_flags, intensity_statistics, region_masks, region_statistics, voxel_volume_ml
from .qc_overlay import save_qc_overlay
from .uncertainty import UNCERTAINTY_METHODS, flip_disagreement, mc_dropout_variance, uncertainty_score

__all__ = ["QCReport"]

logger = logging.getLogger(__name__)


class QCReport:
    """
    An ignite handler for the inference evaluator that writes the QC report of every case (see the module
    docstring): ``<case>_qc.json`` (and ``<case>_qc.png`` with ``overlay_png``) next to the label map, and one row
    per case in ``output_dir/<csv_name>``, rewritten after every case.

    Args:
        output_dir: root folder of the outputs, as for ``SaveImaged``.
        label_names: names of the foreground labels ``1..N`` (softmax) or of the N regions (sigmoid).
        preprocessing: the dataset's preprocessing, inverted to bring uncertainty maps to the input's geometry.
        inferer: the single-pass inferer for the uncertainty passes (the config's ``sw_inferer``); default: the
            engine's inferer.
        network: the network for the uncertainty passes; default: the engine's network.
        activation: ``"softmax"`` or ``"sigmoid"``, as the model's output.
        uncertainty: ``"flip"``, ``"mc_dropout"`` or ``"none"``.
        flip_axes: spatial axes flipped for ``"flip"`` (one pass per entry, plus the unflipped one).
        mc_samples: number of passes for ``"mc_dropout"``.
        mc_dropout_rate: dropout rate of the MC passes for dropout layers whose rate is 0.
        uncertainty_threshold: flag ``high_uncertainty`` above it; None: no flag.
        intensity_range: expected raw intensity range ``[low, high]``; None: not checked.
        outlier_iqr_factor: interquartile ranges beyond the quartiles where a voxel counts as an outlier.
        max_outlier_fraction: fraction of out-of-range or outlier voxels above which a case is flagged.
        overlay_png: also write ``<case>_qc.png`` (orthogonal slices through the largest component).
        separate_folder: one folder per case, as for ``SaveImaged``.
        data_root_dir: inputs' folders are kept relative to it, as for ``SaveImaged`` (the config's ``input_root``).
        pred_postfix: postfix of the saved label map, to name it in the report.
        pred_ext: extension of the saved label map.
        csv_name: file name of the run's CSV in ``output_dir``.
        image_key: key of the preprocessed image in the iteration's output.
        pred_key: key of the postprocessed prediction (in the input's geometry) in the iteration's output.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        label_names: Sequence[str],
        preprocessing: InvertibleTransform,
        inferer: Callable[..., torch.Tensor] | None = None,
        network: Callable[[torch.Tensor], torch.Tensor] | None = None,
        activation: str = "softmax",
        uncertainty: str = "flip",
        flip_axes: Sequence[int | Sequence[int]] = (0, 1, 2),
        mc_samples: int = 8,
        mc_dropout_rate: float = 0.1,
        uncertainty_threshold: float | None = None,
        intensity_range: Sequence[float] | None = None,
        outlier_iqr_factor: float = 6.0,
        max_outlier_fraction: float = 0.01,
        overlay_png: bool = False,
        separate_folder: bool = True,
        data_root_dir: str = "",
        pred_postfix: str = "seg",
        pred_ext: str = ".nii.gz",
        csv_name: str = "qc_report.csv",
        image_key: Hashable = "image",
        pred_key: Hashable = "pred",
    ) -> None:
        if uncertainty not in UNCERTAINTY_METHODS:
            raise ValueError(f"uncertainty must be one of {UNCERTAINTY_METHODS}, got {uncertainty!r}")
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        self.output_dir = Path(output_dir)
        self.label_names = [str(n) for n in label_names]
        self.preprocessing = preprocessing
        self.inferer = inferer
        self.network = network
        self.activation = activation
        self.uncertainty = uncertainty
        self.flip_axes = list(flip_axes)
        self.mc_samples = int(mc_samples)
        self.mc_dropout_rate = float(mc_dropout_rate)
        self.uncertainty_threshold = uncertainty_threshold
        self.intensity_range = intensity_range
        self.outlier_iqr_factor = float(outlier_iqr_factor)
        self.max_outlier_fraction = float(max_outlier_fraction)
        self.overlay_png = bool(overlay_png)
        self.separate_folder = bool(separate_folder)
        self.data_root_dir = data_root_dir
        self.pred_postfix = pred_postfix
        self.pred_ext = pred_ext
        self.csv_path = self.output_dir / csv_name
        self.image_key = image_key
        self.pred_key = pred_key
        self.loader = LoadImage(image_only=True, ensure_channel_first=True)
        self.rows: list[dict[str, Any]] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _start(self, engine: Engine) -> None:
        """Start a new CSV; refuse MC-dropout before any case when the network has no dropout layer."""
        self.rows = []
        network = self.network or engine.network
        if self.uncertainty == "mc_dropout" and not any(
            isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in getattr(network, "modules", list)()
        ):
            raise TypeError(
                f"qc_uncertainty 'mc_dropout' needs a PyTorch network with dropout layers, {type(network).__name__} "
                "has none (an ONNX Runtime session has none); use qc_uncertainty 'flip' instead."
            )

    def __call__(self, engine: Engine) -> None:
        for case in case_outputs(engine):
            network, inferer = self.network or engine.network, self.inferer or engine.inferer
            report = self.report(case[self.image_key], case[self.pred_key], network, inferer)
            self.rows.append(self._csv_row(report))
            self._write_csv()

    def report(
        self, image: MetaTensor, pred: MetaTensor, network: Callable, inferer: Callable[..., torch.Tensor]
    ) -> dict[str, Any]:
        """Measure one case, write its JSON (and PNG); returns the report."""
        meta = image.meta
        source = str(meta[ImageMetaKey.FILENAME_OR_OBJ])
        raw = self.loader(source)
        voxel_ml = voxel_volume_ml(pred.affine)
        masks = region_masks(pred, self.label_names, self.activation)
        regions = {name: region_statistics(mask, voxel_ml) for name, mask in masks.items()}
        foreground = np.any(np.stack(list(masks.values())), axis=0) if masks else np.zeros(pred.shape[1:], bool)

        flags = []
        if not foreground.any():
            flags.append("empty_prediction")
        else:
            flags += [f"empty_{name}" for name, stats in regions.items() if stats["voxels"] == 0]
        flags += intensity_flags(raw, self.intensity_range, self.outlier_iqr_factor, self.max_outlier_fraction)
        score = self._uncertainty(image, network, inferer, torch.as_tensor(foreground))
        if score is not None and self.uncertainty_threshold is not None and score > float(self.uncertainty_threshold):
            flags.append("high_uncertainty")

        spacing = np.sqrt((np.asarray(torch.as_tensor(pred.affine).double())[:3, :3] ** 2).sum(axis=0))
        pred_path = self._path(meta, self.pred_postfix, self.pred_ext)
        report: dict[str, Any] = {
            "case": case_name(meta[ImageMetaKey.FILENAME_OR_OBJ]),
            "image": source,
            "prediction": str(pred_path),
            "shape": [int(s) for s in pred.shape[1:]],
            "spacing_mm": [float(s) for s in spacing],
            "voxel_volume_ml": voxel_ml,
            "regions": regions,
            "uncertainty": {"method": self.uncertainty, "score": score, **self._uncertainty_settings()},
            "intensity": intensity_statistics(raw),
            "flags": flags,
        }
        json_path = self._path(meta, "qc", ".json")
        with atomic_path(json_path) as partial:
            partial.write_text(json.dumps(report, indent=2))
        if self.overlay_png:
            png = self._path(meta, "qc", ".png")
            with atomic_path(png) as partial:
                save_qc_overlay(raw, masks, partial, title=report["case"])
            report["overlay_png"] = str(png)
        volumes = ", ".join(f"{name} {stats['volume_ml']:.3f} mL" for name, stats in regions.items())
        uncertainty = "" if score is None else f", uncertainty {score:.4f}"
        logger.info(f"QC {report['case']}: {volumes}{uncertainty}" + (f", flags {flags}" if flags else ""))
        return report

    def _path(self, meta: Mapping[str, Any], postfix: str, extension: str) -> Path:
        return case_output_path(meta, self.output_dir, postfix, extension, self.separate_folder, self.data_root_dir)

    def _uncertainty_settings(self) -> dict[str, Any]:
        if self.uncertainty == "flip":
            return {"passes": 1 + len(self.flip_axes), "flip_axes": self.flip_axes}
        if self.uncertainty == "mc_dropout":
            return {"passes": self.mc_samples, "dropout_rate": self.mc_dropout_rate}
        return {}

    def _uncertainty(
        self, image: MetaTensor, network: Callable, inferer: Callable[..., torch.Tensor], foreground: torch.Tensor
    ) -> float | None:
        if self.uncertainty == "none":
            return None
        inputs = image.as_tensor()[None]
        if self.uncertainty == "flip":
            maps = flip_disagreement(inferer, network, inputs, self.flip_axes, self.activation)
        else:
            maps = mc_dropout_variance(inferer, network, inputs, self.mc_samples, self.mc_dropout_rate, self.activation)
        maps = invert_to_input(maps[0].cpu(), image, self.preprocessing, nearest_interp=True)
        return uncertainty_score(self.uncertainty, maps, foreground)

    def _csv_row(self, report: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"case": report["case"], "image": report["image"], "prediction": report["prediction"]}
        for name, stats in report["regions"].items():
            row[f"volume_ml_{name}"] = round(stats["volume_ml"], 6)
            row[f"components_{name}"] = stats["components"]
            row[f"largest_component_ml_{name}"] = round(stats["largest_component_ml"], 6)
        score = report["uncertainty"]["score"]
        row["uncertainty_method"] = report["uncertainty"]["method"]
        row["uncertainty"] = "" if score is None else round(score, 6)
        for index, stats in enumerate(report["intensity"]):
            row[f"intensity_min_c{index}"] = stats["min"]
            row[f"intensity_max_c{index}"] = stats["max"]
        row["flags"] = ";".join(report["flags"])
        return row

    def _write_csv(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.csv_path) as partial, open(partial, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
