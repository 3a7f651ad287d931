"""MONAI's ``AsDiscrete``/``AsDiscreted`` with the argmax of :func:`lightmedseg_bundle.workarounds.argmax`.

Same arguments and results as MONAI 1.6.1's transforms (values, dtype, MetaTensor metadata); only the argmax runs
through ``torch.max``, which is 10-15x faster than ``torch.argmax`` over a few-class axis on the CPU (torch 2.13).
``tests/test_workarounds.py`` shows when ``torch.argmax`` no longer needs it.
"""

from __future__ import annotations

from typing import Any

from monai.data import get_track_meta
from monai.transforms import AsDiscrete as MonaiAsDiscrete
from monai.transforms import AsDiscreted as MonaiAsDiscreted
from monai.utils import convert_to_dst_type, convert_to_tensor

from lightmedseg_bundle.workarounds import argmax as fast_argmax

__all__ = ["AsDiscrete", "AsDiscreted"]


class AsDiscrete(MonaiAsDiscrete):
    """MONAI ``AsDiscrete`` (same arguments) whose argmax is :func:`lightmedseg_bundle.workarounds.argmax`."""

    def __call__(
        self,
        img: Any,
        argmax: bool | None = None,
        to_onehot: int | None = None,
        threshold: float | None = None,
        rounding: str | None = None,
    ) -> Any:
        if self.argmax if argmax is None else argmax:
            img_t = convert_to_tensor(img, track_meta=get_track_meta())
            indices = fast_argmax(img_t, dim=self.kwargs.get("dim", 0), keepdim=self.kwargs.get("keepdim", True))
            img = convert_to_dst_type(indices, img, dtype=indices.dtype)[0]
        return super().__call__(img, False, to_onehot, threshold, rounding)


class AsDiscreted(MonaiAsDiscreted):
    """MONAI ``AsDiscreted`` (same arguments) whose argmax is :func:`lightmedseg_bundle.workarounds.argmax`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        converter = AsDiscrete()
        converter.kwargs = self.converter.kwargs
        self.converter = converter
