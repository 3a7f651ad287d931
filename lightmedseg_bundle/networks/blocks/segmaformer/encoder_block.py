from __future__ import annotations

import torch
from torch import nn

from .attention import RoPESelfAttention
from .mamba_layer import MambaLayer
from .mix_ffn import MixFFN

__all__ = ["HybridEncoderBlock"]


class HybridEncoderBlock(nn.Module):
    """
    One pre-norm residual block of SegMaFormer's encoder, ``x = x + Mixer(LN(x))``, ``x = x + MixFFN(LN(x))``,
    where the token mixer is a :class:`MambaLayer` (early stages) or a :class:`RoPESelfAttention` (late stages).

    Args:
        channels: token width ``C``.
        mixer: the token mixer, :class:`MambaLayer` or :class:`RoPESelfAttention` built for ``channels``.
        mlp_ratio: Mix-FFN hidden width as a multiple of ``C``. Defaults to 4.
        act: Mix-FFN activation. Defaults to GELU.
    """

    def __init__(
        self, channels: int, mixer: MambaLayer | RoPESelfAttention, mlp_ratio: int = 4, act: tuple | str = "gelu"
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(channels)
        self.ffn = MixFFN(channels, mlp_ratio, act)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """
        Args:
            x: tokens, shape (B, N, C), raster order of ``grid``.
            grid: token grid (D, H, W).

        Returns:
            shape (B, N, C).
        """
        x = x + self.mixer(self.norm1(x), grid)
        return x + self.ffn(self.norm2(x), grid)
