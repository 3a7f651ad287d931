from __future__ import annotations

import torch
from torch import nn

from .ghost_patch_embed import GhostPatchEmbed3d
from .tokens import to_tokens, to_volume
from .transformer_block import RefineFormerBlock3d

__all__ = ["RefineFormerEncoderStage"]


class RefineFormerEncoderStage(nn.Module):
    """
    One stage of RefineFormer3D's hierarchical transformer encoder: :class:`GhostPatchEmbed3d` divides the
    resolution by ``stride``, the tokens are layer-normalised, ``depth`` :class:`RefineFormerBlock3d` blocks
    transform them and a final layer norm precedes the reshape back to a feature map (the stage's skip output and the
    next stage's input).

    Args:
        in_channels: number of input channels.
        channels: embedding width ``C_i`` of the stage.
        depth: number of transformer blocks.
        num_heads: number of attention heads.
        reduction_ratio: spatial reduction ratio of the attention's keys and values.
        mlp_ratio: MixFFN3D hidden width as a multiple of ``C_i``.
        rank: rank of the MixFFN3D projections.
        kernel_size: kernel size of the patch embedding. Defaults to 3.
        stride: stride of the patch embedding. Defaults to 2.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        depth: int,
        num_heads: int,
        reduction_ratio: int,
        mlp_ratio: int,
        rank: int,
        kernel_size: int = 3,
        stride: int = 2,
    ):
        super().__init__()
        self.embed = GhostPatchEmbed3d(in_channels, channels, kernel_size, stride)
        self.embed_norm = nn.LayerNorm(channels)
        self.blocks = nn.ModuleList(
            RefineFormerBlock3d(channels, num_heads, reduction_ratio, mlp_ratio, rank) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, D, H, W) -> (B, C_i, D/stride, H/stride, W/stride)."""
        x = self.embed(x)
        spatial = list(x.shape[2:])
        tokens = self.embed_norm(to_tokens(x))  # (B, N, C_i)
        for block in self.blocks:
            tokens = block(tokens, spatial)
        return to_volume(self.norm(tokens), spatial)
