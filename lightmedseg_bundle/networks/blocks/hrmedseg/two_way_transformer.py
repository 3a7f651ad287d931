from __future__ import annotations

import torch
from torch import nn

from .token_attention import TokenAttention
from .two_way_attention_block import TwoWayAttentionBlock

__all__ = ["TwoWayTransformer"]


class TwoWayTransformer(nn.Module):
    """
    SAM's two-way transformer: ``depth`` :class:`TwoWayAttentionBlock` layers, then a last token-to-image attention
    and layer norm on the tokens.

    Args:
        channels: token width ``C``.
        depth: number of two-way layers.
        num_heads: number of attention heads.
        mlp_dim: hidden width of the token MLPs.
        downsample_rate: width reduction of the token-image cross-attentions.
    """

    def __init__(self, channels: int, depth: int, num_heads: int, mlp_dim: int, downsample_rate: int):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(channels, num_heads, mlp_dim, downsample_rate, skip_first_layer_pe=i == 0)
            for i in range(depth)
        )
        self.final_token_to_image = TokenAttention(channels, num_heads, downsample_rate)
        self.norm_final = nn.LayerNorm(channels)

    def forward(
        self, tokens: torch.Tensor, image: torch.Tensor, image_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class tokens (B, K, C), image tokens (B, N, C) and their encoding (N, C); returns both updated."""
        token_pe = tokens
        for layer in self.layers:
            tokens, image = layer(tokens, image, token_pe, image_pe)
        tokens = tokens + self.final_token_to_image(tokens + token_pe, image + image_pe, image)
        return self.norm_final(tokens), image
