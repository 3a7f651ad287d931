"""Transforms for LightMedSeg data pipelines."""

from lightmedseg_bundle.transforms.brats_regions import (
    BRATS_REGION_SCHEMES,
    ConvertBratsLabelsToRegions,
    ConvertBratsLabelsToRegionsd,
)
from lightmedseg_bundle.transforms.discrete import AsDiscrete, AsDiscreted
from lightmedseg_bundle.transforms.spacing import TrainingSpacingd
from lightmedseg_bundle.transforms.validate_sample import ValidateSampled

__all__ = [
    "AsDiscrete",
    "AsDiscreted",
    "BRATS_REGION_SCHEMES",
    "ConvertBratsLabelsToRegions",
    "ConvertBratsLabelsToRegionsd",
    "TrainingSpacingd",
    "ValidateSampled",
]
