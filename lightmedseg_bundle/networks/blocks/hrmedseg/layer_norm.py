from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerNorm3d"]


class LayerNorm3d(nn.Module):
    """
    Layer normalisation over the channel axis of a channel-first volume, at every voxel independently: the 3D form
    of SAM's ``LayerNorm2d`` that HRMedSeg's neck and mask decoder use.

    Args:
        channels: number of channels ``C``.
        eps: added to the variance for numerical stability. Defaults to 1e-6.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)  # (B, 1, D, H, W)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]
