"""Flip test-time augmentation as an inferer wrapper (``inference.json``: ``--tta true``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["FlipTTAInferer"]


class FlipTTAInferer(Inferer):
    """Average the class probabilities of the unflipped input and of the input flipped along each axis.

    For every entry of ``spatial_axes`` (default: each spatial axis once) the batch is flipped, run through
    ``inferer`` (e.g. a ``SlidingWindowInferer``), turned into probabilities with ``activation`` and flipped
    back; the mean over the ``1 + len(spatial_axes)`` passes is returned **as logits** (``log p`` for
    softmax, ``logit p`` for sigmoid), so the usual postprocessing (``Activationsd`` then ``AsDiscreted``)
    recovers exactly the averaged probabilities and nothing else in the config changes.

    Args:
        inferer: the inferer that runs one pass (called as ``inferer(inputs, network, ...)``).
        spatial_axes: spatial axes to flip, 0-based without batch and channel dims; an item may be a
            sequence of axes flipped together.
        activation: ``"softmax"`` (mutually exclusive classes) or ``"sigmoid"`` (overlapping regions).
        eps: probabilities are clamped to ``[eps, 1 - eps]`` before taking logs.
    """

    def __init__(
        self,
        inferer: Callable[..., torch.Tensor],
        spatial_axes: Sequence[int | Sequence[int]] = (0, 1, 2),
        activation: str = "softmax",
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        self.inferer = inferer
        self.flips = [tuple(int(a) for a in (ax if isinstance(ax, Sequence) else (ax,))) for ax in spatial_axes]
        self.activation = activation
        self.eps = float(eps)

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return torch.softmax(logits, dim=1) if self.activation == "softmax" else torch.sigmoid(logits)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.Tensor:
        spatial_dims = inputs.ndim - 2
        total = self._probabilities(self.inferer(inputs, network, *args, **kwargs))
        for axes in self.flips:
            if any(a < 0 or a >= spatial_dims for a in axes):
                raise ValueError(f"flip axes {axes} out of range for {spatial_dims} spatial dims")
            dims = [a + 2 for a in axes]
            flipped = self.inferer(torch.flip(inputs, dims), network, *args, **kwargs)
            total = total + torch.flip(self._probabilities(flipped), dims)
        mean = (total / (1 + len(self.flips))).clamp(self.eps, 1.0 - self.eps)
        return torch.log(mean) if self.activation == "softmax" else torch.logit(mean)
