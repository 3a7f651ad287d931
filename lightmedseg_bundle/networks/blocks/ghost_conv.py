from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["GhostConv3d", "get_projection_conv"]


class GhostConv3d(nn.Module):
    """
    Ghost convolution (Han et al., `GhostNet <https://arxiv.org/abs/1911.11907>`_) in 3D, as used by LightMedSeg
    (Sec. 3.1): a dense convolution produces ``ceil(out_channels / ratio)`` primary maps and a cheap depthwise
    convolution (kernel 3, stride 1) synthesises the remaining "ghost" maps from them; both are concatenated.
    Normalisation is left to the caller, as in the paper's stem (``GN_4`` after the concatenation).

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
        kernel_size: kernel size of the primary convolution. Defaults to 3.
        stride: stride of the primary convolution. Defaults to 1.
        ratio: ghost ratio rho, output channels per primary channel. Defaults to 2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, ratio: int = 2):
        super().__init__()
        if ratio < 2:
            raise ValueError(f"`ratio` must be at least 2, got {ratio}.")
        primary_channels = math.ceil(out_channels / ratio)
        self.out_channels = out_channels
        self.primary = nn.Conv3d(in_channels, primary_channels, kernel_size, stride, padding=kernel_size // 2)
        self.cheap = nn.Conv3d(primary_channels, primary_channels * (ratio - 1), 3, padding=1, groups=primary_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary(x)
        out = torch.cat([primary, self.cheap(primary)], dim=1)
        return out[:, : self.out_channels]


def get_projection_conv(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, conv_type: str = "ghost"
) -> nn.Module:
    """
    The learned projection of the stem, the encoder stages and decoder branch 2: a :class:`GhostConv3d` for the
    paper's ghost variant or a dense ``nn.Conv3d`` of the same shape for its "standard conv" variant (Table 1).

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
        kernel_size: kernel size. Defaults to 3.
        stride: stride. Defaults to 1.
        conv_type: ``"ghost"`` or ``"standard"``. Defaults to ``"ghost"``.
    """
    if conv_type == "ghost":
        return GhostConv3d(in_channels, out_channels, kernel_size, stride)
    if conv_type == "standard":
        return nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)
    raise ValueError(f"`conv_type` must be 'ghost' or 'standard', got {conv_type!r}.")
