from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer
from torch import nn

__all__ = ["SqueezeExcitation"]


class SqueezeExcitation(nn.Module):
    """
    Squeeze-and-Excitation channel recalibration (Hu et al., 2018) as written in LightMedSeg's Eq. 10:
    ``sigmoid(W2 SiLU(W1 GAP3D(x))) * x`` with bias-free ``W1`` (b x C) and ``W2`` (C x b), b = max(4, C // 8).

    Args:
        channels: number of channels ``C``.
        act: activation of the bottleneck. Defaults to SiLU.
    """

    def __init__(self, channels: int, act: tuple | str = "swish"):
        super().__init__()
        bottleneck = max(4, channels // 8)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.excite = nn.Sequential(
            nn.Linear(channels, bottleneck, bias=False),
            get_act_layer(act),
            nn.Linear(bottleneck, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.excite(self.pool(x).flatten(1))  # (B, C)
        return x * weights[:, :, None, None, None]
