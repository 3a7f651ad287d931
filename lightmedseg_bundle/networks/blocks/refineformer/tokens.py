"""Conversions between feature maps and the token sequences the RefineFormer3D transformer blocks work on."""

from __future__ import annotations

import torch

__all__ = ["to_tokens", "to_volume"]


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) -> (B, D*H*W, C), voxels in row-major (d, h, w) order."""
    return x.flatten(2).transpose(1, 2)


def to_volume(tokens: torch.Tensor, spatial: list[int]) -> torch.Tensor:
    """(B, D*H*W, C) -> (B, C, D, H, W) for ``spatial = [D, H, W]``; the inverse of :func:`to_tokens`."""
    b, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, spatial[0], spatial[1], spatial[2])
