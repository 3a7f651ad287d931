from __future__ import annotations

import torch
from torch import nn

from ..channel_layer_norm import ChannelLayerNorm

__all__ = ["PatchMerging"]


class PatchMerging(nn.Module):
    """
    Swin-style patch merging, the downsampling of VeloxSeg's transformer stream: every ``s x s x s`` patch is folded
    into the channels (space-to-depth, ``s^3 C`` channels), layer-normalised and projected to ``out_channels`` by a
    1x1x1 convolution without bias. Spatial sizes must be multiples of ``s``; ``s = 1`` is a normalised projection.

    Args:
        in_channels: number of input channels ``C``.
        out_channels: number of output channels.
        stride: downsampling factor ``s`` along every axis. Defaults to 2.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        self.stride = stride
        self.norm = ChannelLayerNorm(stride**3 * in_channels)
        self.reduction = nn.Conv3d(stride**3 * in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        b, c, d, h, w = x.shape
        x = x.reshape(b, c, d // s, s, h // s, s, w // s, s).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, s**3 * c, d // s, h // s, w // s)  # (B, s^3 C, D/s, H/s, W/s)
        return self.reduction(self.norm(x))
