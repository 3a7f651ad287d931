from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from ..ghost_conv import GhostConv3d
from ..squeeze_excitation import SqueezeExcitation
from .efficient_attention import EfficientAttention3d
from .tokens import to_tokens, to_volume

__all__ = ["CrossAttentionFusion3d"]


class CrossAttentionFusion3d(nn.Module):
    """
    Cross-attention skip fusion of RefineFormer3D's decoder. The upsampled decoder features query the encoder skip
    map (keys and values spatially reduced, :class:`EfficientAttention3d`), so every decoder voxel gathers the skip
    context it needs: ``A = U + Attn(LN(U), skip)``. ``A`` and the skip map are then concatenated and fused by a
    1x1x1 :class:`GhostConv3d`, normalised, activated and recalibrated per channel by squeeze-and-excitation.

    Args:
        channels: width ``C_j`` of the decoder features and of the output.
        skip_channels: width of the encoder skip map.
        num_heads: number of attention heads.
        reduction_ratio: spatial reduction ratio of the skip map's keys and values.
        norm: normalisation after the fusion conv.
        act: activation after the fusion conv and inside the SE block.
    """

    def __init__(
        self,
        channels: int,
        skip_channels: int,
        num_heads: int,
        reduction_ratio: int,
        norm: tuple | str = ("group", {"num_groups": 8}),
        act: tuple | str = "gelu",
    ):
        super().__init__()
        self.query_norm = nn.LayerNorm(channels)
        self.attention = EfficientAttention3d(channels, num_heads, reduction_ratio, context_channels=skip_channels)
        self.fuse = nn.Sequential(
            GhostConv3d(channels + skip_channels, channels, kernel_size=1),
            get_norm_layer(norm, spatial_dims=3, channels=channels),
            get_act_layer(act),
        )
        self.se = SqueezeExcitation(channels, act)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: upsampled decoder features ``U``, shape (B, C_j, D, H, W).
            skip: encoder features at the same resolution, shape (B, C_skip, D, H, W).

        Returns:
            fused features, shape (B, C_j, D, H, W).
        """
        spatial = list(x.shape[2:])
        tokens = to_tokens(x)  # (B, N, C_j)
        attended = tokens + self.attention(self.query_norm(tokens), skip)
        fused = self.fuse(torch.cat([to_volume(attended, spatial), skip], dim=1))
        return self.se(fused)
