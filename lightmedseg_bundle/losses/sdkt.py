"""Spatially Decoupled Knowledge Transfer (SDKT) of VeloxSeg: a training-time Gram-matrix loss."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SDKTLoss", "SDKTSegmentationLoss", "gram_matrix"]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """
    Channel Gram matrix of a feature map, ``G = F F^T / (C N)`` with ``F`` the (C, N) matrix of the ``N`` voxels.
    Summing over the voxels decouples the texture statistics from where they occur (and from the resolution).
    Computed in float32, also under autocast, since float16 sums over a volume overflow.

    Args:
        features: (B, C, *spatial).

    Returns:
        (B, C, C).
    """
    flat = features.float().flatten(2)  # (B, C, N)
    flat = flat / math.sqrt(flat.shape[1] * flat.shape[2])
    return torch.matmul(flat, flat.transpose(1, 2))


class SDKTLoss(nn.Module):
    """
    The SDKT term of VeloxSeg (Lu et al., ICLR 2026, https://arxiv.org/abs/2509.22307, Sec. 3.3)::

        L_SDKT = mean_b || G(F_student) - G(F_teacher) ||_F^2

    with :func:`gram_matrix` ``G``. The teacher features are detached: only the student receives gradients. The
    two feature maps need the same channel count but may have different spatial sizes.
    """

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """
        Args:
            student: student features (B, C, *spatial).
            teacher: teacher features (B, C, *spatial'), same B and C.

        Returns:
            the scalar loss.
        """
        if student.shape[:2] != teacher.shape[:2]:
            raise ValueError(
                f"SDKT compares Gram matrices of equal size: student features {list(student.shape)} and teacher "
                f"features {list(teacher.shape)} differ in batch or channel count."
            )
        difference = gram_matrix(student) - gram_matrix(teacher.detach())  # (B, C, C)
        return difference.square().sum(dim=(-2, -1)).mean()


class SDKTSegmentationLoss(nn.Module):
    """
    A segmentation loss plus ``weight`` times :class:`SDKTLoss` between a student network's intermediate features
    and a frozen teacher's features, usable as the ``loss_function(pred, label)`` of MONAI's ``SupervisedTrainer``.

    It registers forward hooks on the student ``network``: in training mode the network's input and the output of
    its submodule ``student_layer`` are kept for the next loss call, where the teacher is run on the same input
    (without gradient) and the SDKT term is added. The network's parameters, state dict and outputs are unchanged;
    in evaluation mode nothing is kept, and a loss call without a preceding training-mode forward is the plain
    segmentation loss.

    What to pass as the teacher: any module taking the student's input (B, in_channels, D, H, W) whose output (or
    whose submodule ``teacher_layer``'s output) has as many channels as the student features -- VeloxSeg's
    ``sdkt_feature_layer`` has ``channels[0]`` (16) channels. The paper's teacher is a self-supervised network
    trained to reconstruct the input, so that its Gram matrices carry the images' texture prior; e.g. a
    :class:`~lightmedseg_bundle.networks.veloxseg.VeloxSeg` with ``out_channels=in_channels`` trained for (masked)
    input reconstruction, with ``teacher_layer="decoder_stages.0"`` and its weights in ``teacher_weights``. The
    teacher is frozen (``requires_grad=False``) and kept in evaluation mode. An untrained teacher gives random
    texture statistics and is only useful as a smoke test.

    Args:
        loss: the segmentation loss, called as ``loss(pred, label)``.
        network: the student network; training-mode forwards are hooked.
        teacher: the frozen teacher module.
        weight: weight of the SDKT term. Defaults to 2.0, the reference implementation's value.
        student_layer: dotted name of the student submodule whose output is compared. Defaults to the network's
            ``sdkt_feature_layer`` attribute.
        teacher_layer: dotted name of the teacher submodule whose output is compared. Defaults to None (the
            teacher's output).
        teacher_weights: path of a state dict (or of a bundle checkpoint holding it under ``"model"``) loaded into
            the teacher. Defaults to None (the teacher as given).
    """

    def __init__(
        self,
        loss: nn.Module,
        network: nn.Module,
        teacher: nn.Module,
        weight: float = 2.0,
        student_layer: str | None = None,
        teacher_layer: str | None = None,
        teacher_weights: str | None = None,
    ):
        super().__init__()
        if weight < 0:
            raise ValueError(f"`weight` must be non-negative, got {weight}.")
        if student_layer is None:
            student_layer = getattr(network, "sdkt_feature_layer", None)
            if student_layer is None:
                raise ValueError(
                    f"{type(network).__name__} has no `sdkt_feature_layer`; pass `student_layer`, the dotted name of "
                    f"the submodule whose output SDKT compares."
                )
        if teacher_weights is not None:
            state = torch.load(teacher_weights, map_location="cpu", weights_only=True)
            teacher.load_state_dict(state.get("model", state))
        self.loss = loss
        self.sdkt = SDKTLoss()
        self.teacher = teacher.requires_grad_(False).eval()
        self.weight = weight
        self.teacher_layer = teacher_layer
        self._input: torch.Tensor | None = None
        self._student: torch.Tensor | None = None
        self._teacher_features: torch.Tensor | None = None
        network.register_forward_pre_hook(self._keep_input)
        network.get_submodule(student_layer).register_forward_hook(self._keep_student)
        if teacher_layer is not None:
            teacher.get_submodule(teacher_layer).register_forward_hook(self._keep_teacher)

    def _keep_input(self, module: nn.Module, args: tuple) -> None:
        if module.training:
            self._input = args[0]

    def _keep_student(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if module.training:
            self._student = output

    def _keep_teacher(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._teacher_features = output

    def train(self, mode: bool = True) -> SDKTSegmentationLoss:
        """Sets the mode of the wrapped loss; the teacher stays in evaluation mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def teacher_features(self, image: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's features of ``image``, without gradient."""
        with torch.no_grad():
            output = self.teacher(image)
        return output if self.teacher_layer is None else self._teacher_features

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            pred: the network's logits.
            target: the label, as the segmentation loss expects it.

        Returns:
            ``loss(pred, target) + weight * L_SDKT`` after a training-mode forward, else ``loss(pred, target)``.
        """
        value = self.loss(pred, target)
        if self._student is None or self._input is None:
            return value
        student, image = self._student, self._input
        self._student, self._input, self._teacher_features = None, None, None
        return value + self.weight * self.sdkt(student, self.teacher_features(image))
