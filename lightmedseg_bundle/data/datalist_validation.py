"""A check of a whole datalist, from the image headers alone, before training starts."""

from __future__ import annotations

import gzip
import os
import struct
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
    Check every case of a datalist before training starts, reading only the image headers with nibabel, and
    return the datalist unchanged, so a bundle config can wrap its datalist in it::

        "train#datalist": "$lightmedseg_bundle.data.validated_datalist(
            monai.data.load_decathlon_datalist(@dataset_json, True, 'training', @dataset_dir),
            num_channels=@in_channels)"

    For each case it checks that the image (and label) file exists and is readable and complete (the size of the
    stored voxel data of a NIfTI file is compared with what its header announces, which catches a truncated
    ``.nii.gz`` without decompressing a healthy one), that image and label have the same spatial shape and, within
    ``affine_atol``, the same affine, and that the image has ``num_channels`` channels (the 4th axis of a 4D
    image, 1 for a 3D one). All problems are collected and reported together.

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
    index: int,
    case: dict,
    image_key: str,
    label_key: str | None,
    num_channels: int | None,
    affine_atol: float,
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
                headers[key] = _read_header(path)
            except _UnreadableFile as error:
                problems.append(f"case {index} ({key!r}): {error}")
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


def _read_header(path: str | os.PathLike) -> SpatialImage:
    """
    Load the header of the image at ``path`` and check that the file holds all the voxel data it announces.

    Raises:
        _UnreadableFile: when nibabel cannot read the file, or its voxel data is cut short.
    """
    try:
        img = nib.load(path)
        if isinstance(img.dataobj, ArrayProxy) and str(path).endswith((".nii", ".nii.gz")):
            needed = img.dataobj.offset + int(np.prod(img.shape, dtype=np.int64)) * img.get_data_dtype().itemsize
            stored = _stored_size(path, needed)
            if stored < needed:
                raise _UnreadableFile(f"truncated file, it holds {stored} bytes but its header needs {needed}: {path}")
    except _READ_ERRORS as error:
        raise _UnreadableFile(
            f"unreadable, truncated or corrupt file ({type(error).__name__}: {error}): {path}"
        ) from error
    return img


def _stored_size(path: str | os.PathLike, expected: int) -> int:
    """
    Return the (uncompressed) size of the file at ``path``. For a gzip file, the size recorded in its trailer is
    trusted when it equals ``expected`` (modulo 2**32); otherwise the file is decompressed to measure it, which
    raises ``EOFError`` or ``zlib.error`` for a truncated or corrupt stream.
    """
    if not str(path).endswith(".gz"):
        return os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        if struct.unpack("<I", f.read(4))[0] == expected % 2**32:
            return expected
    size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
    return size
