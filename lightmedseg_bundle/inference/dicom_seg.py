"""DICOM Segmentation objects (DICOM-SEG) that reference the source series, written with highdicom.

The prediction is saved in the geometry of the series it was computed from (``Invertd``), so every frame of
the SEG lies on a source slice. Frames are sampled by physical position: each pixel centre of each source
slice (``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing``) is mapped through the
prediction's affine to a voxel of the prediction, which must fall on a voxel centre (to 0.01 voxel) inside the
volume; so the slice order, in-plane axes and orientation of the series never need to be assumed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.utils import ImageMetaKey

from .atomic_output import atomic_path
from .dicom_input import dicom_files
from .engine_outputs import case_outputs
from .output_layout import case_output_path
from .qc_metrics import region_masks

__all__ = ["source_series", "frames_on_series", "write_dicom_seg", "DicomSegWriter"]

logger = logging.getLogger(__name__)

#: default segment property category and type: (code value, coding scheme, meaning)
ANATOMICAL_STRUCTURE = ("91723000", "SCT", "Anatomical Structure")
TISSUE = ("85756007", "SCT", "Tissue")


def source_series(folder: str | os.PathLike) -> list:
    """The pydicom datasets of the DICOM files of ``folder`` (one series), with their pixel data."""
    import pydicom

    datasets = [pydicom.dcmread(path) for path in dicom_files(folder)]
    if not datasets:
        raise FileNotFoundError(f"no DICOM files in {folder}")
    series = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(series) != 1:
        raise ValueError(f"{folder} holds {len(series)} DICOM series; a SEG references exactly one")
    return datasets


def frames_on_series(
    masks: np.ndarray, affine_ras: np.ndarray, datasets: Sequence, tolerance: float = 0.01
) -> np.ndarray:
    """
    Resample ``masks`` (N, X, Y, Z) with a RAS ``affine_ras`` onto the pixel grids of the source slices.

    Returns:
        (len(datasets), Rows, Columns, N) array of ``masks``' dtype, frame ``i`` on ``datasets[i]``.

    Raises:
        ValueError: when a pixel centre of a slice is not on a voxel centre of ``masks`` or lies outside it.
    """
    world_to_voxel = np.linalg.inv(np.asarray(affine_ras, dtype=np.float64))
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    frames = []
    for ds in datasets:
        rows, columns = int(ds.Rows), int(ds.Columns)
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
        r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
        lps = (
            np.asarray(ds.ImagePositionPatient, dtype=np.float64)
            + c[..., None] * column_spacing * orientation[:3]  # along a row: the column index grows
            + r[..., None] * row_spacing * orientation[3:]
        )
        ras = lps @ lps_to_ras.T
        index = ras @ world_to_voxel[:3, :3].T + world_to_voxel[:3, 3]
        nearest = np.rint(index).astype(np.int64)
        if np.abs(index - nearest).max() > tolerance:
            raise ValueError(
                f"the prediction's grid does not match DICOM slice {ds.SOPInstanceUID}: its pixels fall "
                f"{np.abs(index - nearest).max():.3f} voxel off the prediction's voxel centres"
            )
        if (nearest < 0).any() or (nearest >= np.asarray(masks.shape[1:])).any():
            raise ValueError(f"DICOM slice {ds.SOPInstanceUID} lies (partly) outside the prediction")
        frames.append(np.moveaxis(masks[:, nearest[..., 0], nearest[..., 1], nearest[..., 2]], 0, -1))
    return np.stack(frames)


def _code(code: Sequence[str]):
    from pydicom.sr.coding import Code

    value, scheme, meaning = (str(v) for v in code)
    return Code(value, scheme, meaning)


def write_dicom_seg(
    pred: MetaTensor,
    series_dir: str | os.PathLike,
    output_path: str | os.PathLike,
    label_names: Sequence[str],
    activation: str = "softmax",
    segment_category: Sequence[str] = ANATOMICAL_STRUCTURE,
    segment_type: Sequence[str] = TISSUE,
    series_description: str = "LightMedSeg segmentation",
    series_number: int = 901,
) -> Path:
    """
    Write ``pred`` as a binary DICOM Segmentation referencing the DICOM series of ``series_dir``.

    Args:
        pred: the prediction in the series' geometry, channel first with a RAS affine: (1, X, Y, Z) labels for
            ``"softmax"``, (N, X, Y, Z) regions for ``"sigmoid"`` (regions may overlap).
        series_dir: the source series folder (the inference input).
        output_path: the ``.dcm`` file to write (its folder is created).
        label_names: segment labels, for labels ``1..N`` (softmax) or regions ``0..N-1`` (sigmoid); segment ``i``
            is ``label_names[i - 1]``.
        activation: ``"softmax"`` or ``"sigmoid"``.
        segment_category: segmented property category of every segment, (code value, scheme, meaning).
        segment_type: segmented property type of every segment, (code value, scheme, meaning).
        series_description: description of the new SEG series.
        series_number: series number of the new SEG series.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    datasets = source_series(series_dir)
    masks = np.stack(list(region_masks(pred, label_names, activation).values())).astype(np.uint8)
    frames = frames_on_series(masks, np.asarray(torch.as_tensor(pred.affine).double()), datasets)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="LightMedSeg", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=index + 1,
            segment_label=str(name),
            segmented_property_category=_code(segment_category),
            segmented_property_type=_code(segment_type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for index, name in enumerate(label_names)
    ]
    with _quiet_highdicom():
        seg = hd.seg.Segmentation(
            source_images=datasets,
            pixel_array=frames.astype(bool),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=int(series_number),
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="LightMedSeg bundle",
            manufacturer_model_name="LightMedSeg",
            software_versions=__version__,
            device_serial_number="none",
            series_description=series_description,
            omit_empty_frames=bool(frames.any()),
        )
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_path) as partial:
        seg.save_as(partial)
    return output_path


@contextmanager
def _quiet_highdicom():
    """highdicom logs every module it copies from the source images at INFO: keep it to warnings."""
    highdicom_logger = logging.getLogger("highdicom")
    level = highdicom_logger.level
    highdicom_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        highdicom_logger.setLevel(level)


class DicomSegWriter:
    """
    An ignite handler for the inference evaluator that writes each prediction as a DICOM-SEG,
    ``<case>_<postfix>.dcm`` next to the label map, referencing the DICOM series it was computed from.

    Args:
        output_dir: root folder of the outputs, as for ``SaveImaged``.
        label_names: the segment labels (see :func:`write_dicom_seg`).
        activation: ``"softmax"`` or ``"sigmoid"``.
        separate_folder: one folder per case, as for ``SaveImaged``.
        data_root_dir: inputs' folders are kept relative to it, as for ``SaveImaged`` (the config's ``input_root``).
        postfix: postfix of the SEG file name.
        segment_category: segmented property category of the segments, (code value, scheme, meaning).
        segment_type: segmented property type of the segments, (code value, scheme, meaning).
        pred_key: key of the postprocessed prediction (in the input's geometry) in the iteration's output.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        label_names: Sequence[str],
        activation: str = "softmax",
        separate_folder: bool = True,
        data_root_dir: str = "",
        postfix: str = "seg",
        segment_category: Sequence[str] = ANATOMICAL_STRUCTURE,
        segment_type: Sequence[str] = TISSUE,
        pred_key: str = "pred",
    ) -> None:
        self.output_dir = output_dir
        self.label_names = list(label_names)
        self.activation = activation
        self.separate_folder = separate_folder
        self.data_root_dir = data_root_dir
        self.postfix = postfix
        self.segment_category = segment_category
        self.segment_type = segment_type
        self.pred_key = pred_key

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        for case in case_outputs(engine):
            pred = case[self.pred_key]
            source = str(pred.meta[ImageMetaKey.FILENAME_OR_OBJ])
            if not os.path.isdir(source):
                raise ValueError(
                    f"DICOM-SEG output needs a DICOM series folder as input, got {source}; "
                    "run with configs/inference_dicom.json and --input_dir <series folder>"
                )
            path = case_output_path(
                pred.meta, self.output_dir, self.postfix, ".dcm", self.separate_folder, self.data_root_dir
            )
            write_dicom_seg(
                pred, source, path, self.label_names, self.activation, self.segment_category, self.segment_type
            )
            logger.info(f"DICOM-SEG of {source}: {path}")
