"""FLOP formulas for the CPU kernels that ``torch.utils.flop_counter.FlopCounterMode`` does not know.

``scripts/benchmark.py`` counts MACs with ``FlopCounterMode``. Two kernels that the bundle's networks reach on the
CPU have no formula in PyTorch: the direct oneDNN convolution of :class:`~.blocks.OneDNNConv3d`, and the CPU
flash-attention kernel behind ``F.scaled_dot_product_attention``. Importing ``lightmedseg_bundle.networks``
registers them, so that they are counted like ``aten.convolution`` and the GPU attention kernels.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import conv_flop_count, flop_registry, register_flop_formula, sdpa_flop_count

__all__: list[str] = []


def _mkldnn_convolution_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def _cpu_flash_attention_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)  # Q K^T and A V


for _op, _formula in (
    (torch.ops.aten.mkldnn_convolution, _mkldnn_convolution_flop),
    (torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, _cpu_flash_attention_flop),
):
    if _op.default not in flop_registry:  # registering twice raises; another library may have done it first
        register_flop_formula(_op)(_formula)
