"""The bundle's opt-in CPU speed pass (:func:`optimize_for_cpu`), kept apart from the networks, which are plain
PyTorch/MONAI modules: the configs apply it with the ``cpu_kernels`` switch, ``scripts/benchmark.py`` to every network
alike."""

from .flop_formulas import register_flop_formulas
from .optimize import optimize_for_cpu

__all__ = ["optimize_for_cpu", "register_flop_formulas"]
