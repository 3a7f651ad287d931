"""Where the per-case outputs go: next to the label map that ``SaveImaged`` writes for the same case."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.data import FolderLayout
from monai.utils import ImageMetaKey

__all__ = ["case_output_path", "case_name"]


def case_output_path(
    meta: Mapping[str, Any], output_dir: str | os.PathLike, postfix: str, extension: str, separate_folder: bool = True
) -> Path:
    """
    The file ``output_dir/[<case>/]<case>_<postfix><extension>`` for the case of ``meta``, laid out exactly as
    MONAI's ``SaveImaged`` lays out the label map (``<case>`` is the input's file or folder name without its
    extension), so that every output of a case sits in the same folder. The folder is created.
    """
    layout = FolderLayout(output_dir, postfix=postfix, extension=extension, parent=separate_folder, makedirs=True)
    return Path(layout.filename(subject=f"{meta[ImageMetaKey.FILENAME_OR_OBJ]}"))


def case_name(meta: Mapping[str, Any]) -> str:
    """The case's name as ``SaveImaged`` forms it: the input's file or folder name without its extension."""
    name, ext = os.path.splitext(os.path.basename(str(meta[ImageMetaKey.FILENAME_OR_OBJ])))
    return os.path.splitext(name)[0] if ext == ".gz" else name
