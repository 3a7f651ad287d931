"""The name of a case, as MONAI's ``SaveImaged`` forms it from the input's path."""

from __future__ import annotations

import os

__all__ = ["case_name"]


def case_name(path: str | os.PathLike) -> str:
    """The input's file or folder name without its extension (``.nii.gz`` counts as one): ``imagesTr/hip_001.nii.gz``
    gives ``hip_001``, the name that ``SaveImaged`` (``FolderLayout``) gives the case's outputs."""
    name, ext = os.path.splitext(os.path.basename(str(path)))
    return os.path.splitext(name)[0] if ext == ".gz" else name
