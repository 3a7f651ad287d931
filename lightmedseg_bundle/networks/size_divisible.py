"""The multiple that every spatial size of a network's input must be, read from the network itself."""

from __future__ import annotations

import math

from monai.networks.nets import SegResNet, UNet
from torch import nn

__all__ = ["size_divisible"]


def size_divisible(network: nn.Module) -> int:
    """
    The multiple every spatial size of ``network``'s input must be (its total downsampling factor), for the configs'
    ``DivisiblePadd(k=...)``: the ``size_divisible`` attribute of the bundle's networks, the product of the
    ``strides`` of MONAI's ``UNet``, ``2^(len(blocks_down) - 1)`` for MONAI's ``SegResNet``. A network wrapped in
    ``DistributedDataParallel`` is read through its ``module``.

    Raises:
        ValueError: for a network whose divisor is not known; set the padding's ``k`` in the config instead.
    """
    net = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
    if hasattr(net, "size_divisible"):
        return int(net.size_divisible)
    if isinstance(net, UNet):
        return math.prod(int(s) if isinstance(s, int) else int(max(s)) for s in net.strides)
    if isinstance(net, SegResNet):
        return int(2 ** (len(net.blocks_down) - 1))
    raise ValueError(
        f"cannot tell which multiple the input sizes of {type(net).__name__} must be: give the network a "
        "`size_divisible` attribute, or replace the `k` of the configs' DivisiblePadd with a number"
    )
