from __future__ import annotations

import torch
from torch import nn

__all__ = ["OverlapPatchEmbed3d"]


class OverlapPatchEmbed3d(nn.Module):
    """
    Overlapping patch embedding of SegFormer / SegFormer3D: a strided convolution whose kernel is larger than its
    stride (7/4 for the first stage, 3/2 afterwards), followed by a LayerNorm over the channels of every token.

    Args:
        in_channels: number of input channels.
        out_channels: token width ``C`` of the stage.
        kernel_size: convolution kernel size; padding is ``kernel_size // 2``.
        stride: convolution stride, the stage's downsampling factor.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """
        Args:
            x: volume, shape (B, C_in, D, H, W).

        Returns:
            the tokens (B, N, C) in raster order and their grid (D', H', W'), ``ceil(size / stride)`` per axis.
        """
        volume = self.proj(x)  # (B, C, D', H', W')
        grid = [volume.shape[2], volume.shape[3], volume.shape[4]]
        return self.norm(volume.flatten(2).transpose(1, 2)), grid
