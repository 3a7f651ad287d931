from .adaptive_decoder_stage import AdaptiveDecoderStage
from .anchor_film import AnchorFiLM
from .encoder_stage import EncoderStage
from .full_resolution_refinement import FullResolutionRefinement
from .ghost_conv import GhostConv3d, get_projection_conv
from .global_anchor_detector import GlobalAnchorDetector
from .local_structural_prior import LocalStructuralPrior
from .skip_router import AlignedSkip, SkipRouter
from .spatial_position_bias import SpatialPositionBias
from .squeeze_excitation import SqueezeExcitation

__all__ = [
    "AdaptiveDecoderStage",
    "AlignedSkip",
    "AnchorFiLM",
    "EncoderStage",
    "FullResolutionRefinement",
    "GhostConv3d",
    "GlobalAnchorDetector",
    "LocalStructuralPrior",
    "SkipRouter",
    "SpatialPositionBias",
    "SqueezeExcitation",
    "get_projection_conv",
]
