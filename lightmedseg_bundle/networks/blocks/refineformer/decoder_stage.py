from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from ..ghost_conv import GhostConv3d
from .cross_attention_fusion import CrossAttentionFusion3d

__all__ = ["RefineFormerDecoderStage"]


class RefineFormerDecoderStage(nn.Module):
    """
    One stage of RefineFormer3D's decoder: the coarser decoder features are projected to the stage width by a
    1x1x1 conv and trilinearly upsampled to the skip map's size (projecting first is the same function at an
    eighth of the cost: both maps are linear and the interpolation weights sum to one), fused with the skip map by
    :class:`CrossAttentionFusion3d`, and refined by a 3x3x3 :class:`GhostConv3d` with normalisation and activation.

    Args:
        in_channels: width of the coarser decoder features.
        skip_channels: width of the encoder skip map.
        channels: width ``C_j`` of the stage.
        num_heads: number of cross-attention heads.
        reduction_ratio: spatial reduction ratio of the skip map's keys and values.
        norm: normalisation type and arguments.
        act: activation type and arguments.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        channels: int,
        num_heads: int,
        reduction_ratio: int,
        norm: tuple | str = ("group", {"num_groups": 8}),
        act: tuple | str = "gelu",
    ):
        super().__init__()
        self.project = nn.Conv3d(in_channels, channels, 1)
        self.fusion = CrossAttentionFusion3d(channels, skip_channels, num_heads, reduction_ratio, norm, act)
        self.refine = nn.Sequential(
            GhostConv3d(channels, channels, kernel_size=3),
            get_norm_layer(norm, spatial_dims=3, channels=channels),
            get_act_layer(act),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """(B, C_in, D/2, H/2, W/2) and skip (B, C_skip, D, H, W) -> (B, C_j, D, H, W)."""
        up = F.interpolate(self.project(x), size=skip.shape[2:], mode="trilinear", align_corners=False)
        return self.refine(self.fusion(up, skip))
