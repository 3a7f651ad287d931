from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["FullResolutionRefinement"]


class FullResolutionRefinement(nn.Module):
    """
    A residual correction of the upsampled logits at the input resolution, computed from the logits and the input
    image: ``logits + W_2 act(GN(Conv3x3([logits, x])))``. Not in the paper (``docs/architecture.md``, decision 9):
    LightMedSeg's finest decoder stage works at D/2, so without it nothing at full resolution sees the image, and a
    boundary can only follow the interpolated half-resolution logits. ``W_2`` starts at zero, so an untrained
    refinement returns the interpolated logits unchanged.

    Args:
        in_channels: number of channels of the input image.
        out_channels: number of logit channels.
        hidden_channels: width of the 3x3x3 convolution. Defaults to 8.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups.
        act: activation type and arguments. Defaults to SiLU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 8,
        norm: tuple | str = ("group", {"num_groups": 4}),
        act: tuple | str = "swish",
    ):
        super().__init__()
        self.conv = nn.Conv3d(out_channels + in_channels, hidden_channels, kernel_size=3, padding=1)
        self.norm = get_norm_layer(norm, spatial_dims=3, channels=hidden_channels)
        self.act = get_act_layer(act)
        self.correction = nn.Conv3d(hidden_channels, out_channels, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """
        Args:
            logits: upsampled logits, (B, out_channels, D, H, W).
            image: the network's input, (B, in_channels, D, H, W).
        """
        hidden = self.act(self.norm(self.conv(torch.cat([logits, image], dim=1))))  # (B, hidden, D, H, W)
        return logits + self.correction(hidden)
