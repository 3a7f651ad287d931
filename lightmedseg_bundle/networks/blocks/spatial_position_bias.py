from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SpatialPositionBias"]


class SpatialPositionBias(nn.Module):
    """
    Anchor-relative spatial position bias of LightMedSeg's decoder (Sec. 3.6, Eqs. 14-15), added to the upsampled
    features. For every anchor ``k`` the signed offset map is the sum of three 1D offsets,
    ``P_k[d, h, w] = (d / D - s_kd) + (h / H - s_kh) + (w / W - s_kw)`` (Eq. 14), and a 1x1x1 conv maps the ``K``
    maps to ``C`` channels (Eq. 15). Because the conv is linear it is applied to each axis's (B, K, L) offsets
    before broadcasting, so neither the (B, K, D, H, W) stack nor the (B, C, D, H, W) bias is materialised: the
    result is identical to stacking ``P`` and convolving it. ``weight`` (C, K) and ``bias`` (C,) are that conv's
    parameters, initialised as ``nn.Conv3d`` initialises a 1x1x1 conv.

    Args:
        num_anchors: number of anchors ``K``.
        channels: number of channels ``C`` of the features the bias is added to.
    """

    def __init__(self, num_anchors: int, channels: int):
        super().__init__()
        bound = 1.0 / math.sqrt(num_anchors)
        self.weight = nn.Parameter(torch.empty(channels, num_anchors).uniform_(-bound, bound))  # Eq. 15
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: upsampled features ``U_j``, shape (B, C, D, H, W).
            anchors: anchors ``S``, shape (B, K, 3), coordinates (d, h, w) in [0, 1].

        Returns:
            ``U_j + SPB_j``, shape (B, C, D, H, W).
        """
        axis_bias: list[torch.Tensor] = []
        for axis in range(3):
            length = x.shape[2 + axis]
            coords = torch.arange(length, device=x.device, dtype=x.dtype) / length  # (L,)
            offsets = coords[None, None, :] - anchors[:, :, axis, None].to(x.dtype)  # (B, K, L), Eq. 14 per axis
            axis_bias.append(torch.matmul(self.weight, offsets))  # (B, C, L)
        bias_d = axis_bias[0] + self.bias[None, :, None]
        out = x + bias_d[:, :, :, None, None]
        out = out + axis_bias[1][:, :, None, :, None]
        return out + axis_bias[2][:, :, None, None, :]
