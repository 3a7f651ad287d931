from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from .anchor_film import AnchorFiLM
from .ghost_conv import get_projection_conv
from .squeeze_excitation import SqueezeExcitation

__all__ = ["EncoderStage"]


class EncoderStage(nn.Module):
    """
    One stage of LightMedSeg's encoder (Sec. 3.4): a 3x3x3 ghost (or dense) projection modulated by the anchors
    (Eq. 6), texture-routed blending of a depthwise detail path and a 1x1x1 smoothing path (Eqs. 7-9) and SE
    recalibration (Eq. 10). Returns the skip feature ``E_i``; downsampling is left to the caller.

    Args:
        in_channels: number of input channels ``C_{i-1}``.
        out_channels: number of output channels ``C_i``.
        num_anchors: number of anchors ``K``.
        conv_type: ``"ghost"`` or ``"standard"`` projection. Defaults to ``"ghost"``.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups.
        act: activation type and arguments. Defaults to SiLU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_anchors: int,
        conv_type: str = "ghost",
        norm: tuple | str = ("group", {"num_groups": 4}),
        act: tuple | str = "swish",
    ):
        super().__init__()
        self.projection = get_projection_conv(in_channels, out_channels, 3, 1, conv_type)
        self.film = AnchorFiLM(num_anchors, out_channels)
        self.detail = nn.Sequential(
            nn.Conv3d(out_channels, out_channels, 3, padding=1, groups=out_channels),
            get_norm_layer(norm, spatial_dims=3, channels=out_channels),
            get_act_layer(act),
        )
        self.smooth = nn.Conv3d(out_channels, out_channels, 1)
        self.se = SqueezeExcitation(out_channels, act)

    def forward(self, x: torch.Tensor, anchors: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: stage input ``F_{i-1}``, shape (B, C_{i-1}, D_i, H_i, W_i).
            anchors: anchors ``S``, shape (B, K, 3).
            texture: texture map ``T`` at any resolution, shape (B, 1, D', H', W'); resampled here to ``T_i``.
        """
        cond = self.film(self.projection(x), anchors)  # Eq. 6
        if texture.shape[2:] != cond.shape[2:]:
            texture = F.interpolate(texture, size=cond.shape[2:], mode="trilinear", align_corners=False)
        detail = self.detail(cond)  # Eq. 7
        smooth = self.smooth(cond)  # Eq. 8
        routed = torch.lerp(smooth, detail, texture)  # Eq. 9: T * detail + (1 - T) * smooth
        del cond, detail, smooth  # freed before the SE block (peak memory at inference)
        return self.se(routed)  # Eq. 10
