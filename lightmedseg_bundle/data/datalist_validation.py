"""A check of a whole datalist, one streaming read per file, before training or inference starts."""

from __future__ import annotations

import gzip
import os
import zlib

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError, SpatialImage

_READ_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, zlib.error, ValueError)


class _UnreadableFile(Exception):
    """Raised by :py:func:`_read_header` with a description of why the file cannot be used."""


def validated_datalist(
    datalist: list[dict],
    image_key: str = "image",
    label_key: str | None = "label",
    num_channels: int | None = None,
    affine_atol: float = 1e-3,
    max_listed: int = 20,
) -> list[dict]:
    """
    Check every case of a datalist before training or inference starts, reading each file once as a stream
    (nothing is kept in memory), and return the datalist unchanged, so a bundle config can wrap its datalist in it::

        "train#datalist": "$lightmedseg_bundle.data.validated_datalist(
            monai.data.load_decathlon_datalist(@dataset_json, True, 'training', @dataset_dir),
            num_channels=@in_channels)"

    For each case it checks that the image (and label) file exists and is readable and complete (the size of the
    stored voxel data of a NIfTI file is compared with what its header announces, and a ``.nii.gz`` is decompressed
    once as a stream, which verifies its CRC: a truncated or corrupted file is refused), that it is a 3D volume
    free of NaN and infinite voxels (counted in the same pass), that image and label have the same spatial shape
    and, within ``affine_atol``, the same affine, and that the image has ``num_channels`` channels (the 4th axis of
    a 4D image, 1 for a 3D one). All problems are collected and reported together, before any case is used.

    Args:
        datalist: list of dicts mapping keys to file paths, e.g. from ``monai.data.load_decathlon_datalist``.
        image_key: key of the image path.
        label_key: key of the label path; None for a datalist without labels.
        num_channels: number of image channels the configuration expects; None skips the check.
        affine_atol: absolute tolerance, in the units of the affine (usually mm), for two affines to match.
        max_listed: how many problems the error lists before summarising the rest as a count.

    Returns:
        ``datalist`` itself.

    Raises:
        ValueError: listing every problem found, each with the index of the case, the key and the file.
    """
    problems = []
    for index, case in enumerate(datalist):
        problems += _case_problems(index, case, image_key, label_key, num_channels, affine_atol)
    if problems:
        listed = problems[:max_listed]
        if len(problems) > max_listed:
            listed.append(f"... and {len(problems) - max_listed} more problem(s)")
        raise ValueError(
            f"{len(problems)} problem(s) in a datalist of {len(datalist)} case(s):\n"
            + "\n".join(f"  - {p}" for p in listed)
        )
    return datalist


def _case_problems(
    index: int, case: dict, image_key: str, label_key: str | None, num_channels: int | None, affine_atol: float
) -> list[str]:
    """Describe everything wrong with case ``index`` of a datalist."""
    keys = [image_key] if label_key is None else [image_key, label_key]
    headers, problems = {}, []
    for key in keys:
        if key not in case:
            problems.append(f"case {index}: no {key!r} entry")
            continue
        path = case[key]
        if not isinstance(path, (str, os.PathLike)):
            problems.append(f"case {index} ({key!r}): expected a single file path, got {path!r}")
        elif not os.path.isfile(path):
            problems.append(f"case {index} ({key!r}): file not found: {path}")
        else:
            try:
                headers[key], nonfinite = _read_header(path)
            except _UnreadableFile as error:
                problems.append(f"case {index} ({key!r}): {error}")
                continue
            if nonfinite:
                problems.append(f"case {index} ({key!r}): {nonfinite} NaN or infinite voxel(s): {path}")
            if len(headers[key].shape) < 3:
                problems.append(
                    f"case {index} ({key!r}): a {len(headers[key].shape)}D image of shape {headers[key].shape}, "
                    f"expected a 3D volume (with channels on a 4th axis): {path}"
                )
    if num_channels is not None and image_key in headers:
        channels = int(np.prod(headers[image_key].shape[3:], dtype=int))
        if channels != num_channels:
            problems.append(
                f"case {index} ({image_key!r}): {channels} channel(s), the configuration expects {num_channels}: "
                f"{case[image_key]}"
            )
    if label_key is not None and image_key in headers and label_key in headers:
        image, label = headers[image_key], headers[label_key]
        image_shape, label_shape = tuple(image.shape[:3]), tuple(label.shape[:3])
        where = f"{case[image_key]} vs {case[label_key]}"
        if image_shape != label_shape:
            problems.append(
                f"case {index}: {image_key!r} spatial shape {image_shape} does not match "
                f"{label_key!r} spatial shape {label_shape}: {where}"
            )
        elif not np.allclose(image.affine, label.affine, rtol=0.0, atol=affine_atol):
            difference = np.abs(image.affine - label.affine).max()
            problems.append(
                f"case {index}: {image_key!r} and {label_key!r} affines differ by up to {difference:.4g} "
                f"(tolerance {affine_atol}): {where}"
            )
    return problems


def _read_header(path: str | os.PathLike) -> tuple[SpatialImage, int]:
    """
    Load the header of the image at ``path``, check that the file holds all the voxel data it announces and count
    its NaN or infinite voxels, in one pass over the stored data.

    Returns:
        the image (header and a lazy data proxy) and its number of non-finite voxels (0 for integer data).

    Raises:
        _UnreadableFile: when nibabel cannot read the file, or its voxel data is cut short or corrupt.
    """
    try:
        img = nib.load(path)
        nonfinite = 0
        if isinstance(img.dataobj, ArrayProxy) and str(path).endswith((".nii", ".nii.gz")):
            dtype = img.get_data_dtype()
            needed = img.dataobj.offset + int(np.prod(img.shape, dtype=np.int64)) * dtype.itemsize
            stored, nonfinite = _scan_stored_data(path, img.dataobj.offset, dtype)
            if stored < needed:
                raise _UnreadableFile(f"truncated file, it holds {stored} bytes but its header needs {needed}: {path}")
    except _READ_ERRORS as error:
        raise _UnreadableFile(
            f"unreadable, truncated or corrupt file ({type(error).__name__}: {error}): {path}"
        ) from error
    return img, nonfinite


def _scan_stored_data(path: str | os.PathLike, offset: int, dtype: np.dtype) -> tuple[int, int]:
    """
    Read the file at ``path`` once as a stream (nothing is kept in memory) and return its (uncompressed) size and
    the number of NaN or infinite values among the ``dtype`` voxels stored from byte ``offset`` on.

    A gzip file is decompressed to its end, which checks its CRC-32 and length: a flipped byte anywhere raises
    ``gzip.BadGzipFile``, a truncated stream ``EOFError``, a corrupt one ``zlib.error``. The size in the gzip
    trailer alone is not enough: it survives corruption in the middle, and nibabel never reaches the CRC.
    """
    floating = dtype.kind in "fc"
    size, nonfinite, pending = 0, 0, b""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        while chunk := f.read(1 << 20):
            start = max(offset - size, 0)
            size += len(chunk)
            if floating and start < len(chunk):
                data = pending + chunk[start:]
                usable = len(data) - len(data) % dtype.itemsize
                values = np.frombuffer(data[:usable], dtype=dtype)
                nonfinite += int(values.size - np.count_nonzero(np.isfinite(values)))
                pending = data[usable:]
    return size, nonfinite
