"""How transforms describe the case and the label values they fail on."""

from __future__ import annotations

from typing import Any

import torch
from monai.data import MetaTensor
from monai.utils import ImageMetaKey


def case_file(img: Any) -> str:
    """
    The file the case ``img`` was loaded from (the ``filename_or_obj`` of its metadata), for error messages, or
    ``"<unnamed case>"`` when it is not a :py:class:`monai.data.MetaTensor` or has no file name.

    Args:
        img: an image or label, usually the output of ``LoadImage``.
    """
    if isinstance(img, MetaTensor) and img.meta.get(ImageMetaKey.FILENAME_OR_OBJ):
        return str(img.meta[ImageMetaKey.FILENAME_OR_OBJ])
    return "<unnamed case>"


def format_values(values: torch.Tensor, max_listed: int = 10) -> str:
    """
    List the distinct values of ``values`` for an error message, integers without a decimal point, at most
    ``max_listed`` of them.

    Args:
        values: the offending voxel values, of any shape.
        max_listed: how many distinct values to list before summarising the rest as a count.
    """
    distinct = [int(v) if float(v).is_integer() else v for v in torch.unique(values).tolist()]
    listed = ", ".join(str(v) for v in distinct[:max_listed])
    if len(distinct) > max_listed:
        listed += f" and {len(distinct) - max_listed} more"
    return f"[{listed}]"
