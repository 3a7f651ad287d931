from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["JLC"]


class JLC(nn.Module):
    """
    Johnson-Lindenstrauss lemma guided convolution (JLC) of VeloxSeg (Sec. 3.2), the "focus" half of the network.

    Parallel grouped convolutions with kernels ``kernel_sizes`` (each followed by norm and activation) are summed
    with the input, then a pointwise channel MLP is added::

        y = x + sum_k act(norm(GConv_k(x)))            # grouped spatial mixing, ``C / group_width`` groups
        out = y + Dropout(PW_2(act(PW_1(norm(y)))))   # channel MLP, hidden width ``expansion * C``

    A depthwise convolution (group width 1) projects every voxel's neighbourhood onto one channel at a time and
    breaks the geometry between adjacent tokens. The JL lemma says that ``k = O(log n / eps^2)`` random dimensions
    keep the pairwise distances of ``n`` points within ``1 +- eps``; JLC therefore gives each group at least
    ``group_width`` channels, growing with the number of voxels compressed into one position (4, 8, 8, 16 for the
    four stages of the reference model), which keeps distances between neighbouring tokens at a fraction of a dense
    convolution's parameters.

    Args:
        channels: number of input and output channels ``C``.
        kernel_sizes: kernel sizes of the parallel grouped convolutions. Defaults to ``(1, 3, 5)``.
        group_width: channels per group ``k``; must divide ``channels``. Defaults to 4.
        expansion: hidden-width factor of the channel MLP. Defaults to 3.
        dropout: dropout probability after the channel MLP. Defaults to 0.0.
        norm: normalisation type and arguments. Defaults to instance norm.
        act: activation type and arguments. Defaults to GELU.
    """

    def __init__(
        self,
        channels: int,
        kernel_sizes: Sequence[int] = (1, 3, 5),
        group_width: int = 4,
        expansion: int = 3,
        dropout: float = 0.0,
        norm: tuple | str = "instance",
        act: tuple | str = "gelu",
    ):
        super().__init__()
        if channels % group_width != 0:
            raise ValueError(f"`group_width` ({group_width}) must divide the channel count ({channels}).")
        groups = channels // group_width
        self.spatial_convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv3d(channels, channels, k, padding=k // 2, groups=groups),
                get_norm_layer(norm, spatial_dims=3, channels=channels),
                get_act_layer(act),
            )
            for k in kernel_sizes
        )
        self.channel_mlp = nn.Sequential(
            get_norm_layer(norm, spatial_dims=3, channels=channels),
            nn.Conv3d(channels, channels * expansion, 1),
            get_act_layer(act),
            nn.Conv3d(channels * expansion, channels, 1),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for conv in self.spatial_convs:
            out = out + conv(x)  # (B, C, D, H, W)
        return out + self.channel_mlp(out)
