"""Losses for training LightMedSeg."""

from lightmedseg_bundle.losses.boundary_band import boundary_band
from lightmedseg_bundle.losses.class_weights import inverse_frequency_weights
from lightmedseg_bundle.losses.lightmedseg_loss import LightMedSegLoss

__all__ = ["LightMedSegLoss", "boundary_band", "inverse_frequency_weights"]
