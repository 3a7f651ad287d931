from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .spatial_reduction import SpatialReduction3d

__all__ = ["EfficientAttention3d"]


class EfficientAttention3d(nn.Module):
    """
    Multi-head attention of RefineFormer3D with spatially reduced keys and values: queries come from ``query``
    tokens, keys and values from the ``context`` feature map shrunk by :class:`SpatialReduction3d`,
    ``softmax(Q K^T / sqrt(d)) V`` per head, then an output projection. With ``context`` the query's own map it is
    the encoder's self-attention; with an encoder skip map it is the decoder's cross-attention. The product is
    computed by ``F.scaled_dot_product_attention``, which on CPU and GPU runs a fused kernel that never holds the
    (N_q, N_kv) score matrix.

    Args:
        channels: width ``C`` of the query tokens and of the output.
        num_heads: number of heads; must divide ``channels``.
        reduction_ratio: spatial reduction ratio of the keys and values.
        context_channels: width of the key/value feature map. Defaults to ``channels``.
    """

    def __init__(self, channels: int, num_heads: int, reduction_ratio: int, context_channels: int | None = None):
        super().__init__()
        if num_heads < 1 or channels % num_heads != 0:
            raise ValueError(f"`num_heads` ({num_heads}) must be positive and divide the width ({channels}).")
        context_channels = channels if context_channels is None else context_channels
        self.num_heads = num_heads
        self.query = nn.Linear(channels, channels)
        self.reduction = SpatialReduction3d(context_channels, reduction_ratio)
        self.key_value = nn.Linear(context_channels, 2 * channels)
        self.proj = nn.Linear(channels, channels)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, C / heads)."""
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query: query tokens, shape (B, N, C).
            context: key/value feature map, shape (B, C_ctx, D', H', W').

        Returns:
            attended tokens, shape (B, N, C).
        """
        b, n, c = query.shape
        q = self.split_heads(self.query(query))  # (B, h, N, C/h)
        k, v = self.key_value(self.reduction(context)).chunk(2, dim=-1)  # (B, M, C) each
        out = F.scaled_dot_product_attention(q, self.split_heads(k), self.split_heads(v))  # (B, h, N, C/h)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
