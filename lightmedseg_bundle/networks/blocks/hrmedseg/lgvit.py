from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .lgvit_block import LGViTBlock
from .mbconv import MBConv3d

__all__ = ["LGViT"]


class LGViT(nn.Module):
    """
    LGViT, HRMedSeg's lightweight gated vision transformer encoder, in 3D. A non-overlapping patch embedding
    (a ``p x p x p`` stride-``p`` convolution) maps the volume to a token grid of width ``C``; every later stage
    keeps that grid and width (no downsampling): stage 0 is ``depths[0]`` :class:`MBConv3d` blocks, stages
    1.. are ``depths[i]`` :class:`LGViTBlock` blocks with ``num_heads[i - 1]`` heads.

    Args:
        in_channels: number of input channels.
        channels: token width ``C``.
        patch_size: patch edge ``p``.
        depths: number of blocks per stage, the convolutional stage first.
        num_heads: attention heads of each transformer stage (``len(depths) - 1`` entries).
        mlp_ratio: expansion ratio of the MBConv blocks and of the transformer MLPs.
        norm: normalisation of the MBConv blocks.
        act: activation of the MBConv blocks and of the transformer MLPs.
        drop_path_rate: stochastic-depth probability, rising linearly over all blocks to this value; the
            convolutional blocks take none, as in the 2D code.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        patch_size: int,
        depths: Sequence[int],
        num_heads: Sequence[int],
        mlp_ratio: float,
        norm: tuple | str,
        act: tuple | str,
        drop_path_rate: float,
    ):
        super().__init__()
        self.patch_embed = nn.Conv3d(in_channels, channels, kernel_size=patch_size, stride=patch_size)
        self.conv_stage = nn.Sequential(*[MBConv3d(channels, mlp_ratio, norm, act) for _ in range(depths[0])])
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()[depths[0] :]
        heads = [h for depth, h in zip(depths[1:], num_heads, strict=True) for _ in range(depth)]
        self.blocks = nn.ModuleList(
            LGViTBlock(channels, h, mlp_ratio, act, rate) for h, rate in zip(heads, rates, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps (B, in_channels, D, H, W) to (B, C, D/p, H/p, W/p)."""
        x = self.conv_stage(self.patch_embed(x))  # (B, C, d, h, w)
        b, c, d, h, w = x.shape
        grid = [d, h, w]
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C), N = d*h*w
        for block in self.blocks:
            tokens = block(tokens, grid)
        return tokens.transpose(1, 2).reshape(b, c, d, h, w)
