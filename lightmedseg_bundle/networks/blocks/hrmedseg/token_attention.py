from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TokenAttention"]


class TokenAttention(nn.Module):
    """
    Multi-head softmax attention with an optional internal width reduction, as in SAM's two-way transformer:
    queries, keys and values are projected from ``C`` to ``C / downsample_rate`` channels and back.
    Between ``K`` class tokens and ``N`` image tokens it costs O(N K), linear in the number of voxels.

    Args:
        channels: number of channels ``C`` of the inputs and the output.
        num_heads: number of heads; must divide ``C / downsample_rate``.
        downsample_rate: width reduction inside the attention. Defaults to 1.
    """

    def __init__(self, channels: int, num_heads: int, downsample_rate: int = 1):
        super().__init__()
        internal = channels // downsample_rate
        if internal % num_heads != 0:
            raise ValueError(f"`num_heads` ({num_heads}) must divide the attention width {internal}.")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(channels, internal)
        self.k_proj = nn.Linear(channels, internal)
        self.v_proj = nn.Linear(channels, internal)
        self.out_proj = nn.Linear(internal, channels)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # (B, heads, n, c/heads)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Queries (B, Nq, C) attend to keys (B, Nk, C) with values (B, Nk, C); returns (B, Nq, C)."""
        out = F.scaled_dot_product_attention(
            self.split_heads(self.q_proj(q)), self.split_heads(self.k_proj(k)), self.split_heads(self.v_proj(v))
        )  # (B, heads, Nq, c/heads)
        b, _, nq, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, -1))
