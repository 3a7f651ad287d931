"""DICOM series folders as inference inputs (``configs/inference_dicom.json``), read by MONAI's ITK reader."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["is_dicom_file", "dicom_files", "dicom_series_datalist"]

logger = logging.getLogger(__name__)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as f:
            header = f.read(132)
    except OSError:
        return False
    return len(header) == 132 and header[128:] == b"DICM"


def dicom_files(folder: str | os.PathLike) -> list[Path]:
    """The DICOM files directly inside ``folder`` (not in its subfolders), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_dicom_file(p))


def _series_uids(folder: Path) -> list[str]:
    import itk

    names = itk.GDCMSeriesFileNames.New()
    names.SetUseSeriesDetails(False)
    names.SetDirectory(str(folder))
    return [str(uid) for uid in names.GetSeriesUIDs()]


def dicom_series_datalist(input_dir: str | os.PathLike, image_key: str = "image") -> list[dict[str, str]]:
    """
    Inference inputs from DICOM series folders: ``input_dir`` itself when it holds DICOM files, otherwise each
    of its subfolders that does (sorted), as ``[{"image": folder}, ...]`` for ``LoadImaged``, whose ITK reader
    reads a folder as one 3D series.

    Raises:
        FileNotFoundError: when ``input_dir`` is not a folder or no folder holds DICOM files.
        ValueError: when a folder holds more than one series (ITK would silently read only one of them).
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"input_dir {str(input_dir)!r} is not a folder: give a DICOM series folder, or a folder of series "
            "folders, with --input_dir"
        )
    folders = [root] if dicom_files(root) else sorted(p for p in root.iterdir() if p.is_dir() and dicom_files(p))
    if not folders:
        raise FileNotFoundError(f"no DICOM files in {root} or in its subfolders")
    for folder in folders:
        uids = _series_uids(folder)
        if len(uids) > 1:
            raise ValueError(
                f"{folder} holds {len(uids)} DICOM series ({', '.join(uids)}); put each series in its own folder"
            )
    logger.info(f"inference on {len(folders)} DICOM series from {root}")
    return [{image_key: os.path.normpath(os.path.abspath(folder))} for folder in folders]
