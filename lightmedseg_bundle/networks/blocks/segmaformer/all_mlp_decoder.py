from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["AllMLPDecoder"]


class AllMLPDecoder(nn.Module):
    """
    SegFormer's all-MLP decoder (Xie et al., `arXiv:2105.15203 <https://arxiv.org/abs/2105.15203>`_, Eq. 4) in 3D:
    every encoder stage is projected to ``channels`` by a per-token linear layer, trilinearly upsampled to the
    first stage's grid (1/4 of the input), the four maps are concatenated and fused by a linear layer with norm and
    activation, and a last linear layer gives the class logits, which are trilinearly upsampled to the input size.

    Args:
        in_channels: widths of the four encoder stages, finest first.
        channels: decoder width. Defaults to 128.
        out_channels: number of output channels. Defaults to 2.
        dropout: channel dropout before the classifier. Defaults to 0.0.
        norm: normalisation after the fusion layer. Defaults to batch norm.
        act: activation after the fusion layer. Defaults to ReLU.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 128,
        out_channels: int = 2,
        dropout: float = 0.0,
        norm: tuple | str = "batch",
        act: tuple | str = "relu",
    ):
        super().__init__()
        self.projections = nn.ModuleList(nn.Conv3d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv3d(len(in_channels) * channels, channels, 1, bias=False),
            get_norm_layer(norm, spatial_dims=3, channels=channels),
            get_act_layer(act),
        )
        self.dropout = nn.Dropout3d(dropout)
        self.classifier = nn.Conv3d(channels, out_channels, 1)

    def forward(self, features: list[torch.Tensor], size: list[int]) -> torch.Tensor:
        """
        Args:
            features: the encoder stages' outputs, each (B, C_i, D_i, H_i, W_i), finest first.
            size: spatial size of the network input (D, H, W).

        Returns:
            logits, shape (B, out_channels, *size).
        """
        target = features[0].shape[2:]
        maps: list[torch.Tensor] = []
        for i, projection in enumerate(self.projections):
            projected = projection(features[i])  # (B, channels, D_i, H_i, W_i)
            if i > 0:
                projected = F.interpolate(projected, size=target, mode="trilinear", align_corners=False)
            maps.append(projected)
        fused = self.fuse(torch.cat(maps, dim=1))  # (B, channels, D/4, H/4, W/4)
        logits = self.classifier(self.dropout(fused))
        return F.interpolate(logits, size=size, mode="trilinear", align_corners=False)
