"""LightMedSeg as a MONAI bundle: the network, its losses, transforms and the helpers that configs call."""

__version__ = "0.6.0"
