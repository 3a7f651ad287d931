"""The checks every network of the bundle runs on its constructor arguments and, first in ``forward``, on its
input, with one wording for all."""

from __future__ import annotations

import torch

__all__ = ["check_network_args", "check_volume_input"]


def check_network_args(network: str, spatial_dims: int, in_channels: int, out_channels: int) -> None:
    """Raises ``ValueError`` unless the network ``network`` is asked for 3D with positive channel counts."""
    if spatial_dims != 3:
        raise ValueError(f"`spatial_dims` can only be 3 ({network} is a 3D network), got {spatial_dims}.")
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"`in_channels` and `out_channels` must be positive, got {in_channels}, {out_channels}.")


def check_volume_input(x: torch.Tensor, network: str, in_channels: int, size_divisible: int) -> None:
    """
    Raises ``ValueError`` if ``x`` is not (B, ``in_channels``, D, H, W) with D, H, W multiples of ``size_divisible``.

    Args:
        x: the network's input.
        network: the network's name, for the message.
        in_channels: the number of input channels the network was built for.
        size_divisible: the multiple every spatial size must be (the network's total downsampling factor).
    """
    if x.dim() != 5:
        raise ValueError(
            f"{network} expects a 5D input (batch, channels, depth, height, width), "
            f"got a {x.dim()}D tensor of shape {list(x.shape)}."
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"{network} was built for {in_channels} input channel(s), got {x.shape[1]} (input shape {list(x.shape)})."
        )
    spatial = list(x.shape[2:])
    for size in spatial:
        if size % size_divisible != 0:
            raise ValueError(
                f"{network} needs every spatial size to be a multiple of {size_divisible}, got {spatial}; "
                f"pad the input (e.g. monai.transforms.DivisiblePadd(k={size_divisible}))."
            )
