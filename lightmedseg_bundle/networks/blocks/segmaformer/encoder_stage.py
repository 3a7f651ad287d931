from __future__ import annotations

import torch
from torch import nn

from .encoder_block import HybridEncoderBlock
from .patch_embedding import OverlapPatchEmbed3d

__all__ = ["HybridEncoderStage"]


class HybridEncoderStage(nn.Module):
    """
    One level of SegMaFormer's hierarchical encoder: an :class:`OverlapPatchEmbed3d` that downsamples, a stack of
    :class:`HybridEncoderBlock` on the tokens, and a final LayerNorm; the tokens are returned as a volume.

    Args:
        embedding: the stage's patch embedding.
        blocks: the stage's encoder blocks, all of the embedding's output width.
    """

    def __init__(self, embedding: OverlapPatchEmbed3d, blocks: list[HybridEncoderBlock]):
        super().__init__()
        self.embedding = embedding
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(embedding.norm.normalized_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input volume, shape (B, C_in, D, H, W).

        Returns:
            the stage's features, shape (B, C, D', H', W').
        """
        tokens, grid = self.embedding(x)  # (B, N, C)
        for block in self.blocks:
            tokens = block(tokens, grid)
        tokens = self.norm(tokens)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], grid[0], grid[1], grid[2])
