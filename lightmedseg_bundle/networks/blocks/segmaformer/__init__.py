"""Blocks of SegMaFormer (Nguyen and Tran-Truong, arXiv:2603.22002): a hybrid Mamba / self-attention encoder."""

from .all_mlp_decoder import AllMLPDecoder
from .attention import RoPESelfAttention
from .encoder_block import HybridEncoderBlock
from .encoder_stage import HybridEncoderStage
from .mamba_layer import MambaLayer
from .mix_ffn import MixFFN
from .patch_embedding import OverlapPatchEmbed3d
from .selective_scan import SelectiveSSM, selective_scan

__all__ = [
    "AllMLPDecoder",
    "HybridEncoderBlock",
    "HybridEncoderStage",
    "MambaLayer",
    "MixFFN",
    "OverlapPatchEmbed3d",
    "RoPESelfAttention",
    "SelectiveSSM",
    "selective_scan",
]
