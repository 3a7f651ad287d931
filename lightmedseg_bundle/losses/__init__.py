"""Losses for training LightMedSeg, and VeloxSeg's optional SDKT knowledge-transfer loss."""

from lightmedseg_bundle.losses.boundary_band import boundary_band
from lightmedseg_bundle.losses.class_weights import inverse_frequency_weights
from lightmedseg_bundle.losses.lightmedseg_loss import LightMedSegLoss
from lightmedseg_bundle.losses.sdkt import SDKTLoss, SDKTSegmentationLoss, gram_matrix

__all__ = [
    "LightMedSegLoss",
    "SDKTLoss",
    "SDKTSegmentationLoss",
    "boundary_band",
    "gram_matrix",
    "inverse_frequency_weights",
]
