"""Inference features beyond the label map, used by the ``configs/inference_*.json`` overlays.

Each module holds one concern:

- :mod:`.onnx_predictor`: an ONNX Runtime session usable as the network of MONAI inferers (CPU runtime).
- :mod:`.priors`: the anchors (as a 3D Slicer markups file) and texture map (as NIfTI) of each case.
- :mod:`.geometry`: network-grid coordinates to physical coordinates; inverting the preprocessing on any tensor.
- :mod:`.markups`: 3D Slicer ``.mrk.json`` point lists.
- :mod:`.qc_report`: the per-case QC report (JSON per case, CSV per run), built from
  :mod:`.qc_metrics` (volumes, components, intensity checks), :mod:`.uncertainty` (flip disagreement,
  MC-dropout variance) and :mod:`.qc_overlay` (PNG of orthogonal slices); :mod:`.distributed_qc`: that report's CSV
  merged from the ranks of a sharded cohort inference (``multi_gpu_inference.json``).
- :mod:`.dicom_input`: DICOM series folders as inputs; :mod:`.dicom_seg`: DICOM-SEG output with highdicom.
- :mod:`.metadata_labels`: label names from the bundle's ``metadata.json``.
- :mod:`.output_layout`, :mod:`.engine_outputs`: where per-case files go (one place per input, checked before any
  work); the cases of an evaluator iteration.
- :mod:`.atomic_output`: every output file is written under a temporary name and renamed when complete.

``highdicom`` (and ``pydicom``) are needed only for DICOM-SEG output and are imported there.
"""

from . import (
    atomic_output,
    dicom_input,
    dicom_seg,
    distributed_qc,
    engine_outputs,
    geometry,
    markups,
    metadata_labels,
    onnx_predictor,
    output_layout,
    priors,
    qc_metrics,
    qc_overlay,
    qc_report,
    uncertainty,
)
from .atomic_output import atomic_image_writer, atomic_path
from .dicom_input import dicom_series_datalist
from .dicom_seg import DicomSegWriter, write_dicom_seg
from .distributed_qc import DistributedQCReport
from .geometry import invert_to_input, normalised_to_world, ras_to_lps
from .markups import point_list_markups, save_markups
from .metadata_labels import label_names
from .onnx_predictor import ONNX_EXPORT_COMMAND, OnnxPredictor
from .output_layout import check_output_paths, input_root
from .priors import PriorsWriter, predict_priors
from .qc_report import QCReport
from .uncertainty import flip_disagreement, mc_dropout_variance, uncertainty_score

__all__ = [
    "DicomSegWriter",
    "DistributedQCReport",
    "ONNX_EXPORT_COMMAND",
    "OnnxPredictor",
    "PriorsWriter",
    "QCReport",
    "atomic_image_writer",
    "atomic_output",
    "atomic_path",
    "check_output_paths",
    "dicom_input",
    "dicom_seg",
    "dicom_series_datalist",
    "distributed_qc",
    "engine_outputs",
    "flip_disagreement",
    "geometry",
    "input_root",
    "invert_to_input",
    "label_names",
    "markups",
    "mc_dropout_variance",
    "metadata_labels",
    "normalised_to_world",
    "onnx_predictor",
    "output_layout",
    "point_list_markups",
    "predict_priors",
    "priors",
    "qc_metrics",
    "qc_overlay",
    "qc_report",
    "ras_to_lps",
    "save_markups",
    "uncertainty",
    "uncertainty_score",
    "write_dicom_seg",
]
