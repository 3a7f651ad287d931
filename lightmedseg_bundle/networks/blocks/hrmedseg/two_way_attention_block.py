from __future__ import annotations

import torch
from monai.networks.blocks import MLPBlock
from torch import nn

from .token_attention import TokenAttention

__all__ = ["TwoWayAttentionBlock"]


class TwoWayAttentionBlock(nn.Module):
    """
    One layer of SAM's two-way transformer, the core of HRMedSeg's mask decoder: (1) self-attention of the class
    tokens, (2) tokens attend to the image, (3) an MLP on the tokens, (4) the image attends to the tokens; each a
    post-norm residual step. Positional encodings are added to queries and keys, never to values.

    Args:
        channels: token width ``C``.
        num_heads: number of attention heads.
        mlp_dim: hidden width of the token MLP.
        downsample_rate: width reduction of the two cross-attentions.
        skip_first_layer_pe: if True (the first layer), step (1) replaces the tokens instead of adding to them and
            uses no positional encoding, as in SAM.
    """

    def __init__(self, channels: int, num_heads: int, mlp_dim: int, downsample_rate: int, skip_first_layer_pe: bool):
        super().__init__()
        self.self_attn = TokenAttention(channels, num_heads)
        self.norm1 = nn.LayerNorm(channels)
        self.token_to_image = TokenAttention(channels, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = MLPBlock(channels, mlp_dim, act="relu")
        self.norm3 = nn.LayerNorm(channels)
        self.image_to_token = TokenAttention(channels, num_heads, downsample_rate)
        self.norm4 = nn.LayerNorm(channels)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self, tokens: torch.Tensor, image: torch.Tensor, token_pe: torch.Tensor, image_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, K, C) and image tokens (B, N, C) with their encodings (B, K, C) and (N, C)."""
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)
        keys = image + image_pe
        tokens = self.norm2(tokens + self.token_to_image(tokens + token_pe, keys, image))
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.image_to_token(keys, tokens + token_pe, tokens))
        return tokens, image
