from __future__ import annotations

import torch
from torch import nn

from ..ghost_conv import GhostConv3d

__all__ = ["GhostPatchEmbed3d"]


class GhostPatchEmbed3d(nn.Module):
    """
    GhostConv3D patch embedding of RefineFormer3D: a strided :class:`GhostConv3d` (half the output maps from a dense
    conv, half from a cheap depthwise 3x3x3 conv on them) sets the stage's resolution and width, and a depthwise
    3x3x3 conv adds a convolutional position encoding as a residual (``x + DWConv(x)``), so that the transformer
    blocks need no fixed-size position table and accept any input size.

    Args:
        in_channels: number of input channels.
        out_channels: embedding width ``C_i`` of the stage.
        kernel_size: kernel size of the dense conv (padding ``kernel_size // 2``). Defaults to 3.
        stride: stride of the dense conv; every input size must be a multiple of it. Defaults to 2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2):
        super().__init__()
        self.proj = GhostConv3d(in_channels, out_channels, kernel_size, stride)
        self.position = nn.Conv3d(out_channels, out_channels, 3, padding=1, groups=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, D, H, W) -> (B, C_i, D/stride, H/stride, W/stride)."""
        x = self.proj(x)
        return x + self.position(x)
