from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["MBConv3d"]


class MBConv3d(nn.Module):
    """
    The inverted-residual (MobileNetV2) block of LGViT's first, convolutional stage, in 3D:
    ``act(x + N(W3 act(N(DW3x3x3 act(N(W1 x))))))`` with bias-free 1x1x1 expansions ``W1`` (C -> rC) and
    ``W3`` (rC -> C) and a 3x3x3 depthwise convolution.

    Args:
        channels: number of input and output channels ``C``.
        expand_ratio: width ratio ``r`` of the hidden layer.
        norm: normalisation type and arguments (HRMedSeg's 2D code uses batch norm; see docs/architecture.md).
        act: activation type and arguments.
    """

    def __init__(self, channels: int, expand_ratio: float, norm: tuple | str, act: tuple | str):
        super().__init__()
        hidden = int(channels * expand_ratio)
        self.expand = nn.Sequential(
            nn.Conv3d(channels, hidden, 1, bias=False),
            get_norm_layer(norm, spatial_dims=3, channels=hidden),
            get_act_layer(act),
        )
        self.depthwise = nn.Sequential(
            nn.Conv3d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            get_norm_layer(norm, spatial_dims=3, channels=hidden),
            get_act_layer(act),
        )
        self.project = nn.Sequential(
            nn.Conv3d(hidden, channels, 1, bias=False), get_norm_layer(norm, spatial_dims=3, channels=channels)
        )
        self.act = get_act_layer(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.project(self.depthwise(self.expand(x))))  # (B, C, D, H, W)
