from __future__ import annotations

from monai.networks.layers.utils import get_norm_layer
from torch import nn

__all__ = ["UpConv"]


class UpConv(nn.Sequential):
    """
    Upsampling of VeloxSeg's decoder: a transposed convolution with kernel and stride ``s`` (a 1x1x1 convolution for
    ``s = 1``), then a normalisation.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
        stride: upsampling factor ``s`` along every axis. Defaults to 2.
        norm: normalisation type and arguments. Defaults to instance norm.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, norm: tuple | str = "instance"):
        super().__init__(
            nn.ConvTranspose3d(in_channels, out_channels, stride, stride=stride),
            get_norm_layer(norm, spatial_dims=3, channels=out_channels),
        )
