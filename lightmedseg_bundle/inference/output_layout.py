"""Where the per-case outputs go: next to the label map that ``SaveImaged`` writes for the same case, one place per
input, checked before any work."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.data import FolderLayout
from monai.utils import ImageMetaKey

from ..data.case_names import case_name
from ..workarounds import as_bool

__all__ = ["case_output_path", "check_output_paths", "input_root"]

logger = logging.getLogger(__name__)


def case_output_path(
    meta: Mapping[str, Any],
    output_dir: str | os.PathLike,
    postfix: str,
    extension: str,
    separate_folder: bool = True,
    data_root_dir: str = "",
    makedirs: bool = True,
) -> Path:
    """
    The file ``output_dir/[<relative folder>/][<case>/]<case>_<postfix><extension>`` for the case of ``meta``, laid
    out exactly as MONAI's ``SaveImaged`` lays out the label map (``<case>`` is the input's file or folder name
    without its extension; ``<relative folder>`` is the input's folder relative to ``data_root_dir``, when given),
    so that every output of a case sits in the same folder. The folder is created unless ``makedirs`` is false.
    """
    layout = FolderLayout(
        output_dir, postfix=postfix, extension=extension, parent=separate_folder, makedirs=makedirs,
        data_root_dir=data_root_dir,
    )  # fmt: skip
    return Path(layout.filename(subject=f"{meta[ImageMetaKey.FILENAME_OR_OBJ]}"))


def input_root(datalist: Sequence[Mapping[str, Any]], image_key: str = "image") -> str:
    """The ``data_root_dir`` of the outputs: ``""`` (outputs named by case alone) unless two inputs share a case
    name; then the inputs' common folder, so that ``p1/t1.nii.gz`` and ``p2/t1.nii.gz`` keep their folders
    (``<output_dir>/p1/t1/t1_seg.nii.gz`` and ``<output_dir>/p2/t1/...``) instead of overwriting each other."""
    paths = [os.path.abspath(str(case[image_key])) for case in datalist]
    names = [case_name(path) for path in paths]
    if len(set(names)) == len(names):
        return ""
    return os.path.commonpath(sorted({os.path.dirname(path) for path in paths}))


def check_output_paths(
    datalist: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    postfix: str,
    extension: str,
    separate_folder: bool = True,
    data_root_dir: str = "",
    overwrite: bool | str = False,
    image_key: str = "image",
) -> list[Path]:
    """Check, before any work, that each input gets its own label map file and that none exists already.

    Returns the label map paths, in datalist order.

    Raises:
        ValueError: two inputs would write the same file (e.g. ``t1.nii`` and ``t1.nii.gz`` in one folder).
        FileExistsError: outputs exist and ``overwrite`` is false; with ``overwrite`` true each is logged.
    """
    paths, by_path = [], {}
    for case in datalist:
        meta = {ImageMetaKey.FILENAME_OR_OBJ: str(case[image_key])}
        path = case_output_path(meta, output_dir, postfix, extension, separate_folder, data_root_dir, makedirs=False)
        by_path.setdefault(path, []).append(str(case[image_key]))
        paths.append(path)
    clashes = {path: inputs for path, inputs in by_path.items() if len(inputs) > 1}
    if clashes:
        listed = "\n".join(f"  - {path}: {', '.join(inputs)}" for path, inputs in list(clashes.items())[:20])
        raise ValueError(
            f"{len(clashes)} output file(s) would be written by more than one input, and all but the last would be "
            f"lost:\n{listed}\nGive each input its own file name (or folder) and run again."
        )
    existing = [path for path in paths if path.exists()]
    if existing and not as_bool(overwrite):
        listed = "\n".join(f"  - {path}" for path in existing[:20])
        more = f"\n  ... and {len(existing) - 20} more" if len(existing) > 20 else ""
        raise FileExistsError(
            f"{len(existing)} of the {len(paths)} output file(s) exist already:\n{listed}{more}\n"
            "Give another --output_dir, or replace them with --overwrite true."
        )
    for path in existing:
        logger.warning(f"--overwrite true: replacing {path}")
    return paths
