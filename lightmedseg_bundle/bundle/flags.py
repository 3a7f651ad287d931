"""Boolean config ids given on the command line.

``python -m monai.bundle run`` parses its arguments with ``fire``, which turns ``--resume True`` into the
boolean ``True`` but leaves ``--resume true`` as the *string* ``"true"`` (and ``"false"`` is truthy in
Python).  The configs pass every boolean switch (``resume``, ``tta``, ``amp``, ``save_predictions``,
``load_pretrain``) through :func:`as_bool` so both spellings work.
"""

from __future__ import annotations

from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", "null", ""}

__all__ = ["as_bool"]


def as_bool(value: Any) -> bool:
    """Read ``value`` as a boolean switch: bools, 0/1, and the strings true/false, yes/no, on/off, 1/0.

    Raises:
        ValueError: for any other value (a typo should not silently mean "on").
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected a boolean switch (true/false), got {value!r}")
