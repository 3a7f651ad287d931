from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["LocalStructuralPrior"]


class LocalStructuralPrior(nn.Module):
    """
    Local Structural Prior Module (LSPM) of LightMedSeg (Sec. 3.3). From the stem output ``F0`` it emits

    - the texture routing map ``T`` (Branch 1, Eqs. 2-3): the absolute residual between ``F0`` and a smoothed copy
      (depthwise 5x5x5 conv, GN, SiLU), reduced to one channel by a 1x1x1 conv and a sigmoid;
    - the adapted features ``F0'`` (Branches 2-3, Eqs. 4-5): a spatial gating head ``psi`` of two 3x3x3 convs
      (``C0 -> 2 C0``, GN, SiLU, then ``2 C0 -> 1``; receptive field 5x5x5) and a sigmoid gives the complexity score
      ``G``; a 1x1x1 conv and a softmax turn ``G`` into two expert weights that blend two 1x1x1 experts.

    Args:
        channels: number of channels ``C0`` of the stem output.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups.
        act: activation type and arguments. Defaults to SiLU.
    """

    def __init__(self, channels: int, norm: tuple | str = ("group", {"num_groups": 4}), act: tuple | str = "swish"):
        super().__init__()
        self.channels = channels
        # Branch 1: texture map
        self.smooth = nn.Sequential(
            nn.Conv3d(channels, channels, 5, padding=2, groups=channels),
            get_norm_layer(norm, spatial_dims=3, channels=channels),
            get_act_layer(act),
        )
        self.texture_head = nn.Conv3d(channels, 1, 1)
        # Branch 2: spatial gating head psi
        self.gating_head = nn.Sequential(
            nn.Conv3d(channels, 2 * channels, 3, padding=1),
            get_norm_layer(norm, spatial_dims=3, channels=2 * channels),
            get_act_layer(act),
            nn.Conv3d(2 * channels, 1, 3, padding=1),
        )
        # Branch 3: adaptive feature mixer; both 1x1x1 experts in one conv, split along channels
        self.expert_gate = nn.Conv3d(1, 2, 1)
        self.experts = nn.Conv3d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: stem output ``F0``, shape (B, C0, D/2, H/2, W/2).

        Returns:
            ``(F0', T)``: adapted features (B, C0, D/2, H/2, W/2) and texture map (B, 1, D/2, H/2, W/2) in [0, 1].
        """
        texture = torch.sigmoid(self.texture_head(torch.abs(self.smooth(x) - x)))  # Eqs. 2-3
        complexity = torch.sigmoid(self.gating_head(x))  # Eq. 4, (B, 1, ...)
        alpha = torch.softmax(self.expert_gate(complexity), dim=1)  # (B, 2, ...), alpha_1 + alpha_2 = 1
        z1, z2 = self.experts(x).split(self.channels, dim=1)
        mixed = torch.lerp(z2, z1, alpha[:, 0:1])  # Eq. 5: alpha_1 z1 + alpha_2 z2, alpha_2 = 1 - alpha_1
        return mixed, texture
