"""
Convolutions whose kernels do not overlap, computed as one matrix product.

On the CPU, oneDNN runs 1x1x1 convolutions and stride-2 2x2x2 transposed convolutions slower than the equivalent
GEMMs over the flattened voxels (about 5x and 2x for LightMedSeg's widths at 64^3 voxels, one thread), and these
layers sit at the network's largest resolutions. The classes below keep the parameters, initialisation and
state-dict layout of ``nn.Conv3d`` / ``nn.ConvTranspose3d`` and only change how the same result is computed.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PointwiseConv3d", "PatchExpandConv3d"]


class PointwiseConv3d(nn.Conv3d):
    """
    A 1x1x1 ``nn.Conv3d`` computed as ``W @ x`` over the flattened voxels.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
        bias: whether to add a learnable bias. Defaults to True.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, d, h, w = x.shape
        out = torch.matmul(self.weight.flatten(1), x.reshape(b, self.in_channels, d * h * w))  # (B, C_out, DHW)
        bias = self.bias
        if bias is not None:
            out = out + bias[:, None]
        return out.view(b, self.out_channels, d, h, w)


class PatchExpandConv3d(nn.ConvTranspose3d):
    """
    A 2x2x2 stride-2 ``nn.ConvTranspose3d``: every input voxel independently expands to a 2x2x2 output patch, so
    each of the 8 patch offsets is a ``(C_out, C_in)`` matrix product written to a stride-2 view of the output.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, d, h, w = x.shape
        voxels = x.reshape(b, self.in_channels, d * h * w)
        out = x.new_empty([b, self.out_channels, 2 * d, 2 * h, 2 * w])
        bias = self.bias
        for i in range(2):
            for j in range(2):
                for k in range(2):
                    patch = torch.matmul(self.weight[:, :, i, j, k].t(), voxels)  # (B, C_out, DHW)
                    if bias is not None:
                        patch = patch + bias[:, None]
                    out[:, :, i::2, j::2, k::2] = patch.view(b, self.out_channels, d, h, w)
        return out
