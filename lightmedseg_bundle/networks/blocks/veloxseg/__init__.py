"""Blocks of VeloxSeg (Lu et al., ICLR 2026, arXiv:2509.22307)."""

from .down_conv import DownConv
from .dual_stream_encoder import DualStreamEncoder
from .jlc import JLC
from .paired_window_attention import PairedWindowAttention
from .patch_merging import PatchMerging
from .pixel_shuffle import PixelShuffle3d
from .pwa_transformer_block import PWATransformerBlock
from .up_conv import UpConv

__all__ = [
    "DownConv",
    "DualStreamEncoder",
    "JLC",
    "PWATransformerBlock",
    "PairedWindowAttention",
    "PatchMerging",
    "PixelShuffle3d",
    "UpConv",
]
