from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .low_rank_linear import LowRankLinear
from .tokens import to_tokens, to_volume

__all__ = ["MixFFN3d"]


class MixFFN3d(nn.Module):
    """
    MixFFN3D of RefineFormer3D: the SegFormer Mix-FFN (expand, depthwise 3x3x3 conv, GELU, project back) in 3D, with
    both linear layers replaced by rank-``r`` :class:`LowRankLinear` projections. The depthwise conv mixes
    neighbouring voxels, which also leaks position information into the tokens.

    Args:
        channels: token width ``C``.
        mlp_ratio: hidden width as a multiple of ``C``.
        rank: rank of both low-rank projections.
    """

    def __init__(self, channels: int, mlp_ratio: int, rank: int):
        super().__init__()
        hidden = channels * mlp_ratio
        self.expand = LowRankLinear(channels, hidden, rank)
        self.mix = nn.Conv3d(hidden, hidden, 3, padding=1, groups=hidden)
        self.project = LowRankLinear(hidden, channels, rank)

    def forward(self, x: torch.Tensor, spatial: list[int]) -> torch.Tensor:
        """(B, N, C) tokens of a (D, H, W) = ``spatial`` volume -> (B, N, C)."""
        hidden = to_volume(self.expand(x), spatial)  # (B, mlp_ratio C, D, H, W)
        return self.project(to_tokens(F.gelu(self.mix(hidden))))
