"""Registers PyTorch's fused ``nn.SiLU`` in MONAI's activation factory.

MONAI 1.6 names SiLU ``"swish"`` and implements it as ``x * sigmoid(x)`` in Python (two kernels and an extra
activation tensor); LightMedSeg uses SiLU everywhere, so the blocks ask the factory for ``"silu"`` instead.
"""

from __future__ import annotations

from monai.networks.layers.factories import Act
from torch import nn

if "SILU" not in Act.names:
    Act.add_factory_callable("silu", lambda: nn.SiLU)
