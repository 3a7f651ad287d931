"""Blocks of RefineFormer3D (Tyagi, Rathi and Goyal, arXiv:2602.16320)."""

from .cross_attention_fusion import CrossAttentionFusion3d
from .decoder_stage import RefineFormerDecoderStage
from .efficient_attention import EfficientAttention3d
from .encoder_stage import RefineFormerEncoderStage
from .ghost_patch_embed import GhostPatchEmbed3d
from .low_rank_linear import LowRankLinear
from .mix_ffn import MixFFN3d
from .spatial_reduction import SpatialReduction3d
from .transformer_block import RefineFormerBlock3d

__all__ = [
    "CrossAttentionFusion3d",
    "EfficientAttention3d",
    "GhostPatchEmbed3d",
    "LowRankLinear",
    "MixFFN3d",
    "RefineFormerBlock3d",
    "RefineFormerDecoderStage",
    "RefineFormerEncoderStage",
    "SpatialReduction3d",
]
