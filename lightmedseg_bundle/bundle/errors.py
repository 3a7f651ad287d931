"""A one-line summary of why a bundle run stopped, printed after the traceback.

MONAI wraps an error raised while a config item is built (a bad case found by ``validated_datalist`` or
``ValidateSampled``) in ``RuntimeError("Failed to instantiate ...")``, so the traceback ends with MONAI's
wrapper and the message that matters sits in the middle. ``initialize`` calls :func:`install_error_summary`,
which makes an uncaught exception end with its root cause, e.g.::

    ERROR (root cause): ValueError: Case hippocampus_042: 'image' has 8 NaN or infinite voxel(s).
"""

from __future__ import annotations

import re
import sys
from types import TracebackType

__all__ = ["WORKER_TRACEBACK", "install_error_summary", "missing_run_id_line", "root_cause", "root_cause_line"]


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of the ``__cause__`` / ``__context__`` chain of ``error``."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


WORKER_TRACEBACK = "Original Traceback (most recent call last):"
"""How PyTorch's DataLoader re-raises an error of a worker process: the worker's traceback, as text, in the message
(``Caught ValueError in DataLoader worker process 0. Original Traceback ...``), whose last line is the error."""


def root_cause_line(error: BaseException) -> str | None:
    """``"<type>: <message>"`` of the root cause of ``error``; ``None`` when ``error`` is its own root cause and
    not a DataLoader worker's error (its traceback already ends with the line)."""
    cause = root_cause(error)
    message = str(cause).strip()
    if WORKER_TRACEBACK in message:
        return message.splitlines()[-1].strip()
    if cause is error:
        return None
    message = " ".join(message.split()) if "\n" not in message else message
    return f"{type(cause).__name__}: {message}"


_MISSING_RUN_ID = re.compile(r"run ID '(?P<id>[^']*)' doesn't exist in the config file")


def missing_run_id_line(error: BaseException, argv: list[str]) -> str | None:
    """For MONAI's ``run ID 'x' doesn't exist in the config file``: the run ids that these configs do have."""
    match = _MISSING_RUN_ID.search(str(error))
    if match is None:
        return None
    from .overrides import command_line_config, run_ids  # the command line's configs, read again

    parser = command_line_config(argv[1:])
    known = run_ids(parser) if parser is not None else []
    return f"there is no run id {match['id']!r} in these configs; their run ids: {', '.join(known) or 'none'}"


def install_error_summary() -> None:
    """Chain a ``sys.excepthook`` that prints the usual traceback, then the root cause on one line (stderr)."""
    if getattr(sys.excepthook, "_lightmedseg_error_summary", False):
        return
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        line = missing_run_id_line(exc, sys.argv) or root_cause_line(exc)
        if line is not None:
            print(f"\nERROR (root cause): {line}", file=sys.stderr, flush=True)

    hook._lightmedseg_error_summary = True  # type: ignore[attr-defined]
    sys.excepthook = hook
