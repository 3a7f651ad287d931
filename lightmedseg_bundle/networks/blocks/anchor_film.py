from __future__ import annotations

import torch
from torch import nn

__all__ = ["AnchorFiLM"]


class AnchorFiLM(nn.Module):
    """
    Anchor-conditioned FiLM of LightMedSeg's encoder (Sec. 3.4, Eq. 6): the flattened anchors ``s`` (3K values) give
    a per-channel scale ``gamma = W_gamma s`` and shift ``beta = W_beta s`` (bias-free linear maps), applied as
    ``(1 + gamma) * x + beta``.

    Args:
        num_anchors: number of anchors ``K``.
        channels: number of feature channels ``C`` to modulate.
    """

    def __init__(self, num_anchors: int, channels: int):
        super().__init__()
        self.channels = channels
        self.projection = nn.Linear(3 * num_anchors, 2 * channels, bias=False)  # [W_gamma; W_beta]

    def forward(self, x: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: features, shape (B, C, D, H, W).
            anchors: anchors ``S``, shape (B, K, 3).
        """
        gamma, beta = self.projection(anchors.flatten(1)).split(self.channels, dim=1)  # (B, C) each
        return x * (1 + gamma[:, :, None, None, None]) + beta[:, :, None, None, None]
