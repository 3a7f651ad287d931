from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelLayerNorm"]


class ChannelLayerNorm(nn.Module):
    """
    Layer normalisation over the channel axis of a channels-first volume (B, C, D, H, W): every voxel's C-vector is
    standardised and scaled by a learnable per-channel affine, as a transformer's ``nn.LayerNorm`` does per token
    (the 3D form of SAM's ``LayerNorm2d``). VeloxSeg uses it before its attention projections, FFNs and patch
    merging; HRMedSeg in its neck and mask decoder.

    Args:
        channels: number of channels ``C``.
        eps: added to the variance for stability. Defaults to 1e-6.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)  # (B, 1, D, H, W)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None, None] + self.bias[:, None, None, None]
