"""A one-line summary of why a bundle run stopped, printed after the traceback.

MONAI wraps an error raised while a config item is built (a bad case found by ``validated_datalist`` or
``ValidateSampled``) in ``RuntimeError("Failed to instantiate ...")``, so the traceback ends with MONAI's
wrapper and the message that matters sits in the middle. ``initialize`` calls :func:`install_error_summary`,
which makes an uncaught exception end with its root cause, e.g.::

    ERROR (root cause): ValueError: Case hippocampus_042: 'image' has 8 NaN or infinite voxel(s).
"""

from __future__ import annotations

import sys
from types import TracebackType

__all__ = ["install_error_summary", "root_cause"]


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of the ``__cause__`` / ``__context__`` chain of ``error``."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def install_error_summary() -> None:
    """Chain a ``sys.excepthook`` that prints the usual traceback, then the root cause on one line (stderr)."""
    if getattr(sys.excepthook, "_lightmedseg_error_summary", False):
        return
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        cause = root_cause(exc)
        if cause is not exc:
            message = " ".join(str(cause).split()) if "\n" not in str(cause).strip() else str(cause).strip()
            print(f"\nERROR (root cause): {type(cause).__name__}: {message}", file=sys.stderr, flush=True)

    hook._lightmedseg_error_summary = True  # type: ignore[attr-defined]
    sys.excepthook = hook
