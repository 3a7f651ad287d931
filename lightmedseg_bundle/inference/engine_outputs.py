"""The per-case results of an inference iteration, as the handlers of this package read them."""

from __future__ import annotations

from ignite.engine import Engine
from monai.data import decollate_batch

__all__ = ["case_outputs"]


def case_outputs(engine: Engine) -> list[dict]:
    """
    The cases of the current iteration of a ``SupervisedEvaluator``, one dict per case, after postprocessing:
    ``"image"`` is the preprocessed network input (a ``MetaTensor`` carrying the preprocessing's
    ``applied_operations`` and an affine on the padded grid) and ``"pred"`` the postprocessed prediction (with
    ``inference.json``: the label map in the input's geometry, as saved).
    """
    output = engine.state.output
    if isinstance(output, dict):  # an engine run with decollate=False
        return list(decollate_batch(output))
    return list(output)
