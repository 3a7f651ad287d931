"""Inferers of the bundle (the counterpart of :mod:`monai.inferers`).

- :mod:`.flip_tta`: flip test-time augmentation wrapping another inferer (``--tta true``).
"""

from .flip_tta import FlipTTAInferer

__all__ = ["FlipTTAInferer"]
