from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer
from torch import nn

__all__ = ["MixFFN"]


class MixFFN(nn.Module):
    """
    SegFormer's Mix-FFN (Xie et al., `arXiv:2105.15203 <https://arxiv.org/abs/2105.15203>`_, Eq. 3) in 3D:
    ``x_out = FC(act(DWConv3x3x3(FC(x))))``; the depthwise convolution over the token grid gives the encoder its
    local positional cue.

    Args:
        channels: token width ``C``.
        mlp_ratio: hidden width as a multiple of ``C``. Defaults to 4.
        act: activation type and arguments. Defaults to GELU.
    """

    def __init__(self, channels: int, mlp_ratio: int = 4, act: tuple | str = "gelu"):
        super().__init__()
        hidden = channels * mlp_ratio
        self.fc1 = nn.Linear(channels, hidden)
        self.dwconv = nn.Conv3d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = get_act_layer(act)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """
        Args:
            x: tokens, shape (B, N, C), raster order of ``grid``.
            grid: token grid (D, H, W).

        Returns:
            shape (B, N, C).
        """
        hidden = self.fc1(x)  # (B, N, rC)
        b, n, c = hidden.shape
        volume = hidden.transpose(1, 2).reshape(b, c, grid[0], grid[1], grid[2])  # (B, rC, D, H, W)
        hidden = self.dwconv(volume).flatten(2).transpose(1, 2)  # (B, N, rC)
        return self.fc2(self.act(hidden))
