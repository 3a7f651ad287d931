from . import flop_counting
from .lightmedseg import LightMedSeg

__all__ = ["LightMedSeg", "flop_counting"]
