"""Blocks of HRMedSeg (arXiv:2504.06205) in 3D: the LGViT encoder and the ECM-Decoder."""

from .ecm_decoder import ECMDecoder
from .fourier_position_embedding import FourierPositionEmbedding3d
from .lgvit import LGViT
from .lgvit_block import LGViTBlock
from .linear_attention import LinearAttention3d
from .mbconv import MBConv3d
from .token_attention import TokenAttention
from .two_way_attention_block import TwoWayAttentionBlock
from .two_way_transformer import TwoWayTransformer

__all__ = [
    "ECMDecoder",
    "FourierPositionEmbedding3d",
    "LGViT",
    "LGViTBlock",
    "LinearAttention3d",
    "MBConv3d",
    "TokenAttention",
    "TwoWayAttentionBlock",
    "TwoWayTransformer",
]
