"""Per-voxel uncertainty of a prediction: flip test-time-augmentation disagreement or MC-dropout variance.

Both functions run the given inferer (e.g. the config's ``sw_inferer``) several times on one preprocessed
volume and return maps on the network's grid; :func:`uncertainty_score` turns them into one number per case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from monai.networks.utils import eval_mode
from torch import nn

from lightmedseg_bundle.workarounds import argmax

__all__ = ["UNCERTAINTY_METHODS", "flip_disagreement", "mc_dropout_variance", "uncertainty_score"]

#: accepted values of the QC report's ``uncertainty`` option
UNCERTAINTY_METHODS = ("flip", "mc_dropout", "none")


def _probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    logits = logits.float()
    return torch.softmax(logits, dim=1) if activation == "softmax" else torch.sigmoid(logits)


def _discrete(probabilities: torch.Tensor, activation: str) -> torch.Tensor:
    """(B, C, ...) probabilities to (B, C', ...) discrete maps: the argmax label (C' = 1) or thresholded regions."""
    if activation == "softmax":
        return argmax(probabilities, dim=1, keepdim=True)
    return (probabilities > 0.5).to(torch.int64)


@torch.no_grad()
def flip_disagreement(
    inferer: Callable[..., torch.Tensor],
    network: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    spatial_axes: Sequence[int | Sequence[int]] = (0, 1, 2),
    activation: str = "softmax",
) -> torch.Tensor:
    """
    Where the discrete predictions of the input and of its flips disagree.

    The input is predicted as is and flipped along each entry of ``spatial_axes`` (flipped back afterwards),
    ``1 + len(spatial_axes)`` passes. Returns a (B, 2, D, H, W) float tensor: channel 0 is 1 where the passes do not
    all give the same label (for ``"sigmoid"``: the same set of regions), channel 1 is 1 where any pass predicts
    foreground (any label above 0, any region).
    """
    with eval_mode(network) if isinstance(network, nn.Module) else nullcontext():
        reference = _discrete(_probabilities(inferer(inputs, network), activation), activation)
        disagree = torch.zeros_like(reference[:, :1], dtype=torch.bool)
        foreground = (reference > 0).any(dim=1, keepdim=True)
        for axes in spatial_axes:
            dims = [int(a) + 2 for a in (axes if isinstance(axes, Sequence) else (axes,))]
            flipped = inferer(torch.flip(inputs, dims), network)
            labels = torch.flip(_discrete(_probabilities(flipped, activation), activation), dims)
            disagree |= (labels != reference).any(dim=1, keepdim=True)
            foreground |= (labels > 0).any(dim=1, keepdim=True)
    return torch.cat([disagree, foreground], dim=1).float()


@torch.no_grad()
def mc_dropout_variance(
    inferer: Callable[..., torch.Tensor],
    network: nn.Module,
    inputs: torch.Tensor,
    num_samples: int = 8,
    dropout_rate: float = 0.1,
    activation: str = "softmax",
) -> torch.Tensor:
    """
    Monte-Carlo dropout: the variance of the class probabilities over ``num_samples`` passes with the network's
    dropout layers active, averaged over the classes; (B, 1, D, H, W).

    Every dropout layer of ``network`` is switched to training mode for the passes (the rest of the network stays
    in evaluation mode), with its own rate, or with ``dropout_rate`` where its rate is 0 (the bundle's network is
    trained with ``dropout`` 0.0, so this is the usual case); rates and modes are restored afterwards.

    Raises:
        TypeError: when ``network`` has no dropout layer (e.g. an ONNX Runtime session).
    """
    dropouts = [m for m in network.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if not dropouts:
        raise TypeError(
            f"MC-dropout needs a PyTorch network with dropout layers, {type(network).__name__} has none; "
            "use the flip uncertainty (qc_uncertainty 'flip') instead."
        )
    if int(num_samples) < 2:
        raise ValueError(f"MC-dropout needs at least 2 samples, got {num_samples}")
    saved = [m.p for m in dropouts]
    with eval_mode(network):
        try:
            for m in dropouts:
                m.p = m.p if m.p > 0 else float(dropout_rate)
                m.train()
            passes = [_probabilities(inferer(inputs, network), activation) for _ in range(int(num_samples))]
            samples = torch.stack(passes)
        finally:
            for m, p in zip(dropouts, saved, strict=True):
                m.p = p
                m.eval()
    return samples.var(dim=0, unbiased=True).mean(dim=1, keepdim=True)


def uncertainty_score(method: str, maps: torch.Tensor, foreground: torch.Tensor) -> float:
    """
    One uncertainty number for a case from the maps of :func:`flip_disagreement` (``"flip"``) or
    :func:`mc_dropout_variance` (``"mc_dropout"``), both in the same geometry as ``foreground``:

    - ``"flip"``: the fraction of the voxels that any pass labels as foreground where the passes disagree,
      in [0, 1] (0: every flip gives the same segmentation); 0 when no pass predicts foreground.
    - ``"mc_dropout"``: the mean probability variance over the predicted foreground ``foreground`` (over the
      whole volume when the prediction is empty).
    """
    if method == "flip":
        disagree, union = maps[0] > 0.5, maps[1] > 0.5
        total = int(union.sum())
        return float((disagree & union).sum()) / total if total else 0.0
    if method == "mc_dropout":
        variance = maps[0]
        mask = foreground.to(torch.bool)
        return float(variance[mask].mean()) if bool(mask.any()) else float(variance.mean())
    raise ValueError(f"unknown uncertainty method {method!r}, expected one of {UNCERTAINTY_METHODS}")
