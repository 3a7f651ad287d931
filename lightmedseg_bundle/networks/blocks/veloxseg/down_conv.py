from __future__ import annotations

from monai.networks.layers.utils import get_norm_layer
from torch import nn

__all__ = ["DownConv"]


class DownConv(nn.Sequential):
    """
    Downsampling of VeloxSeg's convolution stream: a dense convolution with stride ``s``, kernel ``max(2s - 1, 3)``
    and "same" padding (overlapping patches: kernel 7 for the stride-4 stem, 3 for strides 2 and 1), then a
    normalisation.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
        stride: downsampling factor ``s`` along every axis.
        norm: normalisation type and arguments. Defaults to instance norm.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: tuple | str = "instance"):
        super().__init__(
            nn.Conv3d(in_channels, out_channels, max(2 * stride - 1, 3), stride, padding=max(stride - 1, 1)),
            get_norm_layer(norm, spatial_dims=3, channels=out_channels),
        )
