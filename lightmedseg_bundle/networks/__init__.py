from .lightmedseg import LightMedSeg

__all__ = ["LightMedSeg"]
