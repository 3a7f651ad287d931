"""The LightMedSeg training objective: class-weighted Dice + cross-entropy + boundary-band cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks import one_hot
from torch.nn.modules.loss import _Loss

from lightmedseg_bundle.losses.boundary_band import boundary_band
from lightmedseg_bundle.losses.class_weights import inverse_frequency_weights


class LightMedSegLoss(_Loss):
    """
    The LightMedSeg training objective (Sec. 3.7 of the paper)::

        L = L_Dice + L_CE + boundary_weight * L_Bdry

    - ``L_Dice``: soft Dice loss, computed per image and class, averaged over the batch.
    - ``L_CE``: voxel-wise cross-entropy (``softmax=True``, mutually exclusive classes) or binary cross-entropy
      (``sigmoid=True``, overlapping regions such as BraTS TC/WT/ET).
    - ``L_Bdry``: per-class binary cross-entropy restricted to the band ``M`` of voxels within
      ``boundary_dilation`` voxels (ℓ∞) of a class boundary of the target (see
      :py:func:`lightmedseg_bundle.losses.boundary_band.boundary_band`), normalised by ``|M|``.
      An empty band gives 0.

    With ``class_weighted=True`` every term weights class ``c`` by the inverse voxel frequency
    ``w_c = |Ω| / (N_cls · Σ_r y_{c,r})`` of the batch (see
    :py:func:`lightmedseg_bundle.losses.class_weights.inverse_frequency_weights`, which also explains how classes
    absent from the batch are handled). The weights are normalised within each term, so each term is a weighted
    mean and stays on the scale of its unweighted version: the Dice and boundary terms average over classes with
    weights ``w_c / Σ_k w_k``; the softmax cross-entropy weights each voxel by the weight of its true class and
    divides by the sum of those voxel weights, as ``torch.nn.CrossEntropyLoss(weight=...)`` does.

    Like :py:class:`monai.losses.DiceCELoss`, ``include_background=False`` removes channel 0 from the Dice and the
    boundary terms only; the (binary) cross-entropy term always covers every channel.

    The loss is computed in float32 (or float64 for float64 input), also for float16 logits under autocast, since
    float16 voxel counts and sums over a volume overflow.

    Args:
        include_background: if False, channel 0 (background) is left out of the Dice and boundary terms.
        to_onehot_y: whether to convert a label-index ``target`` of shape (B, 1, spatial...) to one-hot with
            ``input.shape[1]`` classes.
        softmax: if True, ``input`` holds logits of mutually exclusive classes: softmax probabilities and
            cross-entropy.
        sigmoid: if True, ``input`` holds independent per-channel logits: sigmoid probabilities and binary
            cross-entropy.
        boundary_weight: weight of the boundary term; the paper uses 0.5.
        boundary_dilation: radius ``d`` (voxels, ℓ∞) the class boundary is dilated by to form the band ``M``;
            the paper uses 3.
        class_weighted: whether to weight the classes by inverse voxel frequency; if False every class weighs 1.
        smooth_nr: a small constant added to the numerator of the Dice score to avoid zero.
        smooth_dr: a small constant added to the denominator of the Dice score to avoid NaN.

    Raises:
        ValueError: when not exactly one of ``softmax`` and ``sigmoid`` is True, or when ``boundary_weight`` or
            ``boundary_dilation`` is negative.

    Example::

        loss = LightMedSegLoss(to_onehot_y=True, softmax=True)
        value = loss(logits, label)  # logits (B, 3, H, W, D), label (B, 1, H, W, D) with values 0, 1, 2
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        softmax: bool = False,
        sigmoid: bool = False,
        boundary_weight: float = 0.5,
        boundary_dilation: int = 3,
        class_weighted: bool = True,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
    ) -> None:
        super().__init__()
        if int(softmax) + int(sigmoid) != 1:
            raise ValueError(
                "Set exactly one of softmax=True (mutually exclusive classes, cross-entropy) "
                f"and sigmoid=True (overlapping regions, binary cross-entropy); got softmax={softmax}, "
                f"sigmoid={sigmoid}."
            )
        if boundary_weight < 0:
            raise ValueError(f"boundary_weight must be non-negative, got {boundary_weight}.")
        if boundary_dilation < 0:
            raise ValueError(f"boundary_dilation must be non-negative, got {boundary_dilation}.")
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.softmax = softmax
        self.sigmoid = sigmoid
        self.boundary_weight = float(boundary_weight)
        self.boundary_dilation = int(boundary_dilation)
        self.class_weighted = class_weighted
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits of shape (B, N, H, W) or (B, N, H, W, D).
            target: ground truth of the same shape as ``input`` (one-hot or multi-hot), or of shape
                (B, 1, spatial...) holding class indices when ``to_onehot_y=True``.

        Returns:
            the scalar loss.

        Raises:
            ValueError: when the shapes of ``input`` and ``target`` do not fit, or the channels do not suit the
                chosen mode.
        """
        if input.ndim not in (4, 5):
            raise ValueError(f"input must have shape (B, N, H, W) or (B, N, H, W, D), got {tuple(input.shape)}.")
        num_channels = input.shape[1]
        if self.softmax and num_channels < 2:
            raise ValueError(f"softmax=True needs at least 2 input channels, got {num_channels}.")
        if not self.include_background and num_channels < 2:
            raise ValueError(f"include_background=False needs at least 2 input channels, got {num_channels}.")
        if self.to_onehot_y:
            if target.ndim != input.ndim or target.shape[1] != 1:
                raise ValueError(
                    f"to_onehot_y=True needs a target of shape (B, 1, spatial...) to go with input of shape "
                    f"{tuple(input.shape)}, got {tuple(target.shape)}."
                )
            target = one_hot(target, num_classes=num_channels)
        if target.shape != input.shape:
            raise ValueError(
                f"ground truth has a different shape {tuple(target.shape)} from input {tuple(input.shape)}"
                + ("" if self.to_onehot_y else "; pass to_onehot_y=True for a label-index target")
                + "."
            )
        # float16 sums over a volume overflow, so the loss is computed in (at least) float32, also under autocast;
        # as plain tensors: a MONAI MetaTensor (the trainer's label) would send each of the ~40 voxel-wise ops below
        # through its Python __torch_function__ (a fifth of the loss's time)
        input = input.as_subclass(torch.Tensor).to(torch.promote_types(input.dtype, torch.float32))
        target = target.as_subclass(torch.Tensor).to(input.dtype)

        with torch.no_grad():
            if self.class_weighted:
                weights = inverse_frequency_weights(target)
            else:
                weights = torch.ones(num_channels, device=input.device, dtype=input.dtype)
            band = boundary_band(target, self.boundary_dilation)

        if self.softmax:
            log_prob = F.log_softmax(input, dim=1)
            prob = log_prob.exp()
            binary_ce = -(target * log_prob + (1 - target) * _log_one_minus_softmax(input))
            voxel_weights = (target * _per_channel(weights, input.ndim)).sum(dim=1)
            voxel_ce = -(target * log_prob).sum(dim=1)
            ce = (voxel_weights * voxel_ce).sum() / voxel_weights.sum().clamp_min(torch.finfo(input.dtype).tiny)
        else:
            prob = torch.sigmoid(input)
            binary_ce = F.binary_cross_entropy_with_logits(input, target, reduction="none")
            channel_bce = binary_ce.mean(dim=[d for d in range(input.ndim) if d != 1])
            ce = (weights * channel_bce).sum() / weights.sum()

        if not self.include_background:
            prob, target, binary_ce, weights = prob[:, 1:], target[:, 1:], binary_ce[:, 1:], weights[1:]

        spatial_dims = list(range(2, input.ndim))
        intersection = (prob * target).sum(dim=spatial_dims)
        denominator = prob.sum(dim=spatial_dims) + target.sum(dim=spatial_dims)
        dice_loss = 1.0 - (2.0 * intersection + self.smooth_nr) / (denominator + self.smooth_dr)
        dice = (weights * dice_loss.mean(dim=0)).sum() / weights.sum()

        class_mean_bce = (binary_ce * _per_channel(weights, input.ndim)).sum(dim=1, keepdim=True) / weights.sum()
        boundary = (class_mean_bce * band).sum() / band.sum().clamp_min(1)

        return dice + ce + self.boundary_weight * boundary


def _per_channel(weights: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape N channel weights to (1, N, 1, ...) to broadcast against a (B, N, spatial...) tensor of ``ndim`` dims."""
    return weights.view(1, -1, *([1] * (ndim - 2)))


def _log_one_minus_softmax(logits: torch.Tensor) -> torch.Tensor:
    """
    Compute ``log(1 - softmax(logits, dim=1))`` stably, as the log-sum-exp of the other channels' logits minus the
    log-sum-exp of all of them, so a confidently wrong channel still gets a finite value and gradient.

    The other channels' log-sum-exp is assembled from running log-sum-exps from the front and from the back, with
    ``torch.logaddexp`` (one fused pass per pair): 2(N - 1) passes and N - 2 combinations instead of N log-sum-exps
    over N - 1 copied channels (a third of the time, forward and backward, for 3 channels).
    """
    channels = logits.unbind(dim=1)
    before: list[torch.Tensor | None] = []  # log-sum-exp of the channels before c
    running: torch.Tensor | None = None
    for channel in channels:
        before.append(running)
        running = channel if running is None else torch.logaddexp(running, channel)
    total = running
    others: list[torch.Tensor] = []
    after: torch.Tensor | None = None  # log-sum-exp of the channels after c
    for c in reversed(range(len(channels))):
        if before[c] is None or after is None:
            others.append(before[c] if after is None else after)
        else:
            others.append(torch.logaddexp(before[c], after))
        after = channels[c] if after is None else torch.logaddexp(channels[c], after)
    return torch.stack(others[::-1], dim=1) - total.unsqueeze(1)
