"""FLOP formulas for the CPU kernels that ``torch.utils.flop_counter.FlopCounterMode`` does not know.

``scripts/benchmark.py`` counts MACs with ``FlopCounterMode``. Two kernels that the networks reach on the CPU have
no formula in PyTorch: the direct oneDNN convolution of :class:`~.kernels.OneDNNConv3d`, and the CPU
flash-attention kernel behind ``F.scaled_dot_product_attention``. :func:`register_flop_formulas` adds them to
PyTorch's registry, so that they are counted like ``aten.convolution`` and the GPU attention kernels; nothing is
registered on import.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import conv_flop_count, flop_registry, register_flop_formula, sdpa_flop_count

__all__ = ["register_flop_formulas"]


def _mkldnn_convolution_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def _cpu_flash_attention_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)  # Q K^T and A V


def register_flop_formulas() -> None:
    """Register the formulas in ``torch.utils.flop_counter``'s registry (once; later calls do nothing)."""
    for op, formula in (
        (torch.ops.aten.mkldnn_convolution, _mkldnn_convolution_flop),
        (torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, _cpu_flash_attention_flop),
    ):
        if op not in flop_registry and op.default not in flop_registry:  # registering twice raises
            register_flop_formula(op)(formula)
