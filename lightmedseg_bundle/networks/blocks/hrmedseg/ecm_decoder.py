from __future__ import annotations

import torch
from torch import nn

from ..channel_layer_norm import ChannelLayerNorm
from .fourier_position_embedding import FourierPositionEmbedding3d
from .two_way_transformer import TwoWayTransformer

__all__ = ["ECMDecoder"]


class ECMDecoder(nn.Module):
    """
    HRMedSeg's efficient cross-multiscale decoder (ECM-Decoder), in 3D, for semantic segmentation with one learned
    token per class (no prompts):

    1. a neck maps the encoder grid to the decoder width ``C`` (1x1x1 conv, LN, 3x3x3 conv, LN);
    2. a :class:`TwoWayTransformer` exchanges information between the ``K`` class tokens and the image tokens at
       the coarse (1/p) scale, with Fourier positional encodings on the image tokens;
    3. two 2x2x2 stride-2 transposed convolutions upscale the image tokens 4x to ``C / 8`` channels;
    4. a shared 3-layer MLP (hypernetwork) turns each class token into a ``C / 8``-vector whose dot product with the
       upscaled features is that class's logit at every voxel of the fine scale.

    Decoding across scales this way (tokens learnt coarse, applied fine) needs no hierarchical decoder or high-
    resolution skip features; the attention at the coarse scale costs O(N K) for N image tokens.

    Args:
        in_channels: width of the encoder features.
        num_classes: number of class tokens ``K`` (output channels).
        channels: decoder width ``C``; must be a multiple of 8.
        depth: number of two-way transformer layers.
        num_heads: attention heads of the transformer.
        mlp_dim: hidden width of the transformer's token MLPs.
        downsample_rate: width reduction of the token-image cross-attentions.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int,
        depth: int,
        num_heads: int,
        mlp_dim: int,
        downsample_rate: int,
    ):
        super().__init__()
        self.neck = nn.Sequential(
            nn.Conv3d(in_channels, channels, 1, bias=False),
            ChannelLayerNorm(channels),
            nn.Conv3d(channels, channels, 3, padding=1, bias=False),
            ChannelLayerNorm(channels),
        )
        self.position_embedding = FourierPositionEmbedding3d(channels)
        self.class_tokens = nn.Parameter(torch.randn(num_classes, channels))
        self.transformer = TwoWayTransformer(channels, depth, num_heads, mlp_dim, downsample_rate)
        self.upscale = nn.Sequential(
            nn.ConvTranspose3d(channels, channels // 4, 2, stride=2),
            ChannelLayerNorm(channels // 4),
            nn.GELU(),
            nn.ConvTranspose3d(channels // 4, channels // 8, 2, stride=2),
            nn.GELU(),
        )
        self.hypernetwork = nn.Sequential(
            nn.Linear(channels, channels),
            nn.ReLU(),
            nn.Linear(channels, channels),
            nn.ReLU(),
            nn.Linear(channels, channels // 8),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Maps encoder features (B, C_in, d, h, w) to class logits (B, K, 4d, 4h, 4w)."""
        src = self.neck(features)  # (B, C, d, h, w)
        b, c, d, h, w = src.shape
        image_pe = self.position_embedding([d, h, w])  # (N, C)
        # a copy, not an expanded view: a view of a parameter keeps requires_grad under no_grad/inference_mode,
        # which FlopCounterMode's module tracker cannot hook
        tokens = self.class_tokens.unsqueeze(0).repeat(b, 1, 1)  # (B, K, C)
        tokens, image = self.transformer(tokens, src.flatten(2).transpose(1, 2), image_pe)
        upscaled = self.upscale(image.transpose(1, 2).reshape(b, c, d, h, w))  # (B, C/8, 4d, 4h, 4w)
        weights = self.hypernetwork(tokens)  # (B, K, C/8)
        masks = weights @ upscaled.flatten(2)  # (B, K, 64 d h w)
        return masks.view(b, -1, 4 * d, 4 * h, 4 * w)
