"""Output files that are complete or absent: each is written under a hidden temporary name in its own folder and
renamed over its final name only once written, as the checkpoint saver does for checkpoints. A run killed while
saving leaves no truncated ``<case>_seg.nii.gz`` (or QC, priors, DICOM-SEG file) that looks like a finished one.
The label maps' writer also keeps the input's spatial axes when one of them has size 1
(:class:`lightmedseg_bundle.workarounds.KeepOneSliceAxes`)."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from monai.data.image_writer import ImageWriter, resolve_writer

from ..workarounds import KeepOneSliceAxes

__all__ = ["PARTIAL_PREFIX", "atomic_image_writer", "atomic_path"]

logger = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"
"""Start of the temporary name of a file being written (the final name follows, so its extension is kept)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed to ``path``, on error removed.

    The temporary name ends with the final name, so writers that choose the format from the extension
    (nibabel, matplotlib, pydicom) write the same file.
    """
    path = Path(path)
    partial = path.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield partial
        with open(partial, "rb+") as written:  # on disk before the rename makes it visible
            os.fsync(written.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class _AtomicWrite:
    """Mixin for a MONAI ``ImageWriter``: ``write`` goes through :func:`atomic_path` (and logs the final name)."""

    def write(self, filename, verbose: bool = True, **kwargs):
        with atomic_path(filename) as partial:
            result = super().write(str(partial), verbose=False, **kwargs)  # pytype: disable=attribute-error
        if verbose:
            logger.info(f"writing: {filename}")
        return result


_ATOMIC_WRITERS: dict[type, type] = {}


def atomic_image_writer(output_ext: str) -> type[ImageWriter]:
    """The ``ImageWriter`` class MONAI's ``SaveImage`` would choose for ``output_ext``, writing atomically and
    keeping the spatial axes of a one-slice volume.

    For ``SaveImaged(writer=...)``: ``"writer": "$atomic_image_writer(@output_ext)"``.
    """
    base = resolve_writer(output_ext)[0]
    if base not in _ATOMIC_WRITERS:
        _ATOMIC_WRITERS[base] = type(f"Atomic{base.__name__}", (_AtomicWrite, KeepOneSliceAxes, base), {})
    return _ATOMIC_WRITERS[base]
