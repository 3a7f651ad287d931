"""Resampling to the training spacing, with a workaround for MONAI 1.6.1's ``Spacingd``.

After resampling ``key``, MONAI 1.6.1's ``Spacingd.__call__`` calls ``.update(meta)`` on *every* entry of the data
dictionary whose name starts with ``<key>_``, assuming each is a meta dictionary. MONAI Label's inference adds
``image_path`` (a string) next to ``image``, so the bundle's preprocessing failed there with
``AttributeError: 'str' object has no attribute 'update'``. The workaround itself is
:func:`lightmedseg_bundle.workarounds.split_non_meta_entries`; ``tests/test_workarounds.py`` shows when MONAI's own
``Spacingd`` no longer needs it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.transforms import Spacingd

from lightmedseg_bundle.workarounds import split_non_meta_entries

__all__ = ["TrainingSpacingd"]


class TrainingSpacingd(Spacingd):
    """MONAI ``Spacingd`` (same arguments, same inverse) that leaves entries other than meta dictionaries whose
    names start with ``<key>_`` (``image_path``) alone instead of failing on them."""

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> dict[Hashable, Any]:
        d, set_aside = split_non_meta_entries(data, self.keys)
        out = super().__call__(d, lazy=lazy)
        out.update(set_aside)
        return out
