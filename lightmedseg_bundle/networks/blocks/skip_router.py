from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_act_layer
from torch import nn

__all__ = ["SkipRouter", "AlignedSkip"]


class SkipRouter(nn.Module):
    """
    Learned multi-scale skip router of LightMedSeg (Sec. 3.5, Eqs. 12-13), used at the two coarse decoder levels.
    It receives the ``M`` encoder features projected to a common width ``R`` (Eq. 11) and resampled to the decoder
    level's size; a two-layer 1x1x1 controller on their concatenation (``M R -> R``, SiLU, ``R -> M``) predicts
    per-voxel logits over the sources, whose softmax weights blend them. A 1x1x1 conv maps the result to the
    decoder level's width.

    Args:
        router_channels: common width ``R`` of the projected encoder features (64 in the paper).
        num_sources: number of encoder stages routed ``M``. Defaults to 4.
        out_channels: width ``C_j`` of the decoder level.
        act: activation of the controller. Defaults to SiLU.
    """

    def __init__(self, router_channels: int, out_channels: int, num_sources: int = 4, act: tuple | str = "swish"):
        super().__init__()
        self.controller = nn.Sequential(
            nn.Conv3d(num_sources * router_channels, router_channels, 1),
            get_act_layer(act),
            nn.Conv3d(router_channels, num_sources, 1),
        )
        self.output = nn.Conv3d(router_channels, out_channels, 1)

    def routing_weights(self, sources: list[torch.Tensor]) -> torch.Tensor:
        """Softmax routing weights ``alpha`` (Eq. 12), shape (B, M, D_j, H_j, W_j), summing to 1 over M."""
        return torch.softmax(self.controller(torch.cat(sources, dim=1)), dim=1)

    def forward(self, sources: list[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            sources: the M projected, resampled encoder features, each (B, R, D_j, H_j, W_j).

        Returns:
            ``SKIP_j``, shape (B, C_j, D_j, H_j, W_j).
        """
        alpha = self.routing_weights(sources)
        fused = sources[0] * alpha[:, 0:1]
        for i in range(1, len(sources)):
            fused = fused + sources[i] * alpha[:, i : i + 1]  # Eq. 13
        return self.output(fused)


class AlignedSkip(nn.Module):
    """
    Single aligned skip map of LightMedSeg's two fine decoder levels (Sec. 3.5): the spatially corresponding
    feature map is projected to the decoder level's width by a 1x1x1 conv and trilinearly resampled to its size.

    Args:
        in_channels: width of the source feature map.
        out_channels: width ``C_j`` of the decoder level.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.projection = nn.Conv3d(in_channels, out_channels, 1)

    def forward(self, feature: torch.Tensor, size: list[int]) -> torch.Tensor:
        skip = self.projection(feature)
        if skip.shape[2:] != size:
            skip = F.interpolate(skip, size=size, mode="trilinear", align_corners=False)
        return skip
