from __future__ import annotations

import torch
from torch import nn

from .tokens import to_tokens

__all__ = ["SpatialReduction3d"]


class SpatialReduction3d(nn.Module):
    """
    Key/value source of RefineFormer3D's efficient attention: the feature map is shrunk by ``ratio`` along every
    axis with a depthwise ``ratio``-cubed conv of stride ``ratio`` and layer-normalised as tokens. Attention then
    costs ``N * N / ratio^3`` instead of ``N^2`` (the spatial-reduction attention of PVT / SegFormer3D); the
    depthwise form keeps the reduction at ``C * ratio^3`` parameters instead of SegFormer3D's ``C^2 * ratio^3``.
    ``ratio = 1`` keeps the map as it is (normalisation only).

    Args:
        channels: number of channels ``C``.
        ratio: reduction ratio per axis; every spatial size must be a multiple of it.
    """

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        if ratio < 1:
            raise ValueError(f"`ratio` must be positive, got {ratio}.")
        self.reduce = (
            nn.Conv3d(channels, channels, ratio, stride=ratio, groups=channels) if ratio > 1 else nn.Identity()
        )
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> (B, D*H*W / ratio^3, C)."""
        return self.norm(to_tokens(self.reduce(x)))
