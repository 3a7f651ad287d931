from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from .ghost_conv import get_projection_conv
from .spatial_position_bias import SpatialPositionBias
from .squeeze_excitation import SqueezeExcitation

__all__ = ["AdaptiveDecoderStage"]


class AdaptiveDecoderStage(nn.Module):
    """
    One stage of LightMedSeg's adaptive decoder (Sec. 3.6): 2x2x2 transposed-conv upsampling (all stages but the
    first, which works at the bottleneck's resolution, see ``docs/architecture.md``), anchor-relative
    spatial position bias (Eqs. 14-15), 1x1x1 fusion with the skip signal (Eq. 16), three branches (depthwise
    3x3x3, ghost 3x3x3, 1x1x1; each + GN + SiLU, Eqs. 19-21) blended by per-voxel softmax weights from a shared
    1x1x1 conv (Eqs. 17-18), and SE recalibration.

    Args:
        in_channels: number of channels of the stage input.
        out_channels: number of channels ``C_j`` of the stage.
        upsample: whether the stage starts with a stride-2 transposed conv; without it ``in_channels`` must equal
            ``out_channels``. Defaults to True.
        num_anchors: number of anchors ``K``.
        conv_type: ``"ghost"`` or ``"standard"`` for branch 2. Defaults to ``"ghost"``.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups.
        act: activation type and arguments. Defaults to SiLU.
    """

    num_branches = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_anchors: int,
        upsample: bool = True,
        conv_type: str = "ghost",
        norm: tuple | str = ("group", {"num_groups": 4}),
        act: tuple | str = "swish",
    ):
        super().__init__()

        def norm_act() -> list[nn.Module]:
            return [get_norm_layer(norm, spatial_dims=3, channels=out_channels), get_act_layer(act)]

        if not upsample and in_channels != out_channels:
            raise ValueError(f"A stage without upsampling keeps its width, got {in_channels} -> {out_channels}.")
        self.up = nn.ConvTranspose3d(in_channels, out_channels, 2, stride=2) if upsample else nn.Identity()
        self.position_bias = SpatialPositionBias(num_anchors, out_channels)
        self.fuse = nn.Conv3d(2 * out_channels, out_channels, 1)
        self.gate = nn.Conv3d(out_channels, self.num_branches, 1)
        self.local_branch = nn.Sequential(
            nn.Conv3d(out_channels, out_channels, 3, padding=1, groups=out_channels), *norm_act()
        )
        self.context_branch = nn.Sequential(
            get_projection_conv(out_channels, out_channels, 3, 1, conv_type), *norm_act()
        )
        self.channel_branch = nn.Sequential(nn.Conv3d(out_channels, out_channels, 1), *norm_act())
        self.se = SqueezeExcitation(out_channels, act)

    def branch_weights(self, fused: torch.Tensor) -> torch.Tensor:
        """Per-voxel branch weights ``pi`` (Eq. 17), shape (B, 3, D, H, W), summing to 1 over the branches."""
        return torch.softmax(self.gate(fused), dim=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: stage input, shape (B, C_in, D/2, H/2, W/2), or (B, C_j, D, H, W) without upsampling.
            skip: ``SKIP_j``, shape (B, C_j, D, H, W).
            anchors: anchors ``S``, shape (B, K, 3).

        Returns:
            ``D_j``, shape (B, C_j, D, H, W).
        """
        # U_j + SPB_j, freed once concatenated (at D/2 one map fewer alive at inference)
        fused = self.fuse(torch.cat([self.position_bias(self.up(x), anchors), skip], dim=1))  # Eq. 16
        pi = self.branch_weights(fused)
        gated = pi[:, 0:1] * self.local_branch(fused)  # Eq. 18
        gated = gated + pi[:, 1:2] * self.context_branch(fused)
        gated = gated + pi[:, 2:3] * self.channel_branch(fused)
        return self.se(gated)
