from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer
from torch import nn

from ..channel_layer_norm import ChannelLayerNorm
from .paired_window_attention import PairedWindowAttention

__all__ = ["PWATransformerBlock"]


class PWATransformerBlock(nn.Module):
    """
    One block of VeloxSeg's modal-cooperative transformer stream: :class:`PairedWindowAttention` across the ``M``
    modality streams (pre-norm, residual), then a per-modality pointwise feed-forward network (pre-norm, residual)::

        x_m = x_m + PWA(x_1..x_M)_m
        x_m = x_m + Dropout(PW_2(act(PW_1(LN(x_m)))))

    Args:
        channels: channels ``C`` of every modality stream.
        num_modalities: number of modality streams ``M``. Defaults to 1.
        num_heads: attention heads per scale. Defaults to 1.
        head_dim: query/key channels per head. Defaults to 4.
        num_scales: number of paired-window scales. Defaults to 1.
        window_size: pooled tokens per axis of a big window. Defaults to 4.
        global_window: attend over the whole grid. Defaults to False.
        expansion: hidden-width factor of the feed-forward network. Defaults to 3.
        dropout: dropout probability of the attention and the feed-forward network. Defaults to 0.0.
        act: activation type and arguments. Defaults to GELU.
    """

    def __init__(
        self,
        channels: int,
        num_modalities: int = 1,
        num_heads: int = 1,
        head_dim: int = 4,
        num_scales: int = 1,
        window_size: int = 4,
        global_window: bool = False,
        expansion: int = 3,
        dropout: float = 0.0,
        act: tuple | str = "gelu",
    ):
        super().__init__()
        self.attention = PairedWindowAttention(
            channels, num_modalities, num_heads, head_dim, num_scales, window_size, global_window, dropout
        )
        self.ffns = nn.ModuleList(
            nn.Sequential(
                ChannelLayerNorm(channels),
                nn.Conv3d(channels, channels * expansion, 1),
                get_act_layer(act),
                nn.Conv3d(channels * expansion, channels, 1),
                nn.Dropout(dropout),
            )
            for _ in range(num_modalities)
        )

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = self.attention(xs)  # residual inside
        return [x + ffn(x) for x, ffn in zip(xs, self.ffns, strict=True)]
