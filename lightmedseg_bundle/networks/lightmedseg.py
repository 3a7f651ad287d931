from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
import torch.nn.functional as F
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from .blocks import (
    AdaptiveDecoderStage,
    AlignedSkip,
    EncoderStage,
    FullResolutionRefinement,
    GlobalAnchorDetector,
    LocalStructuralPrior,
    SkipRouter,
    get_projection_conv,
)
from .input_check import check_network_args, check_volume_input

__all__ = ["LightMedSeg"]


class LightMedSeg(nn.Module):
    """
    LightMedSeg from `LightMedSeg: Lightweight 3D Medical Image Segmentation with Learned Spatial Anchors`
    (Tyagi, Rathi and Goyal), Sec. 3: a U-Net-style network whose five components are

    1. a stride-2 :class:`GhostConv3d` patch-embedding stem with ``GN_4`` (Sec. 3.1);
    2. a :class:`GlobalAnchorDetector` predicting ``K`` anchors ``S`` in ``[0, 1]^3`` from the input (Sec. 3.2);
    3. a :class:`LocalStructuralPrior` giving the texture map ``T`` and the adapted stem features (Sec. 3.3);
    4. four :class:`EncoderStage` blocks with anchor FiLM, texture routing and SE, max-pooled after stages 1-3
       (Sec. 3.4);
    5. multi-scale skip fusion (:class:`SkipRouter` at the two coarse decoder levels, :class:`AlignedSkip` at the two
       fine ones, Sec. 3.5) feeding four :class:`AdaptiveDecoderStage` blocks, symmetric to the encoder (1/16, 1/8,
       1/4 and 1/2 of the input size), and a head of a 1x1x1 conv and a 2x2x2 stride-2 transposed conv that
       restores the input resolution (Sec. 3.6).

    The total stride is 16 (stem and three poolings): every spatial size of the input must be a multiple of 16,
    e.g. by padding with ``monai.transforms.DivisiblePadd(k=16)``. The output has the input's spatial size.
    Where the paper's text is ambiguous or inconsistent, the decisions taken are listed in ``docs/architecture.md``.

    Args:
        spatial_dims: number of spatial dimensions; LightMedSeg is defined for 3D volumes only. Defaults to 3.
        in_channels: number of input channels (imaging modalities). Defaults to 1.
        out_channels: number of output channels (classes or regions). Defaults to 3 (background, anterior and
            posterior hippocampus: the shipped model).
        channels: widths ``C_1..C_4`` of the four encoder stages; ``C_1`` is also the stem width ``C_0`` and the
            anchor detector's width, ``C_4`` the skip router's common width, and the decoder mirrors them.
            Defaults to ``(8, 16, 32, 64)``, the paper's schedule.
        num_anchors: number of anchors ``K``. Defaults to 8.
        anchor_hidden_size: hidden width of the anchor detector's MLP. Defaults to 128.
        conv_type: ``"ghost"`` for ghost projections (the paper's main model) or ``"standard"`` for dense
            convolutions in their place (the paper's "Standard Conv" variant). Defaults to ``"ghost"``.
        dropout: channel dropout probability applied to the bottleneck and before the head; MONAI Label's
            epistemic (MC-dropout) scoring sets it. Defaults to 0.0.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups (``GN_4``).
        act: activation type and arguments. Defaults to SiLU.
        return_priors: if True, ``forward`` returns ``(logits, anchors, texture)``: anchors (B, K, 3) and the
            texture map (B, 1, D/2, H/2, W/2), for quality assurance. Defaults to False (logits only).
        head_upsample: how the head brings the D/2 logits to full size: ``"transposed"``, the paper's 2x2x2
            transposed convolution, or ``"trilinear"`` interpolation, which lets boundaries fall between the
            half-resolution voxels (better for small structures such as the hippocampus, see
            docs/architecture.md), or ``"refined"``: trilinear, then a :class:`FullResolutionRefinement` that corrects
            the logits at full resolution from the input image. Defaults to ``"refined"``, the shipped model's head.
    """

    __constants__ = ["size_divisible"]
    size_divisible = 16  # total stride: the stem and three max-poolings

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 3,
        channels: Sequence[int] = (8, 16, 32, 64),
        num_anchors: int = 8,
        anchor_hidden_size: int = 128,
        conv_type: str = "ghost",
        dropout: float = 0.0,
        norm: tuple | str = ("group", {"num_groups": 4}),
        act: tuple | str = "swish",
        return_priors: bool = False,
        head_upsample: str = "refined",
    ):
        super().__init__()
        check_network_args("LightMedSeg", spatial_dims, in_channels, out_channels)
        if len(channels) != 4:
            raise ValueError(f"`channels` must hold the widths of the 4 encoder stages, got {tuple(channels)}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
        if conv_type not in ("ghost", "standard"):
            raise ValueError(f"`conv_type` must be 'ghost' or 'standard', got {conv_type!r}.")
        if head_upsample not in ("transposed", "trilinear", "refined"):
            raise ValueError(f"`head_upsample` must be 'transposed', 'trilinear' or 'refined', got {head_upsample!r}.")
        c1, c2, c3, c4 = (int(c) for c in channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.return_priors = return_priors

        self.stem = nn.Sequential(
            get_projection_conv(in_channels, c1, 3, 2, conv_type), get_norm_layer(norm, spatial_dims=3, channels=c1)
        )
        self.anchor_detector = GlobalAnchorDetector(in_channels, num_anchors, c1, anchor_hidden_size, norm, act)
        self.structural_prior = LocalStructuralPrior(c1, norm, act)

        widths = (c1, c1, c2, c3, c4)  # stem, stages 1-4
        self.encoder = nn.ModuleList(
            EncoderStage(widths[i], widths[i + 1], num_anchors, conv_type, norm, act) for i in range(4)
        )
        self.pool = nn.MaxPool3d(2)

        self.skip_projections = nn.ModuleList(nn.Conv3d(c, c4, 1) for c in (c1, c2, c3, c4))  # Eq. 11
        self.skip_routers = nn.ModuleList([SkipRouter(c4, c4), SkipRouter(c4, c3)])  # decoder levels 1-2
        self.aligned_skips = nn.ModuleList([AlignedSkip(c2, c2), AlignedSkip(c1, c1)])  # levels 3-4: E2, stem

        self.bottleneck = nn.Conv3d(c4, c4, 1)
        self.decoder = nn.ModuleList(
            AdaptiveDecoderStage(cin, cout, num_anchors, j > 0, conv_type, norm, act)
            for j, (cin, cout) in enumerate(((c4, c4), (c4, c3), (c3, c2), (c2, c1)))
        )
        self.dropout = nn.Dropout3d(dropout)
        upsample = (
            nn.ConvTranspose3d(out_channels, out_channels, 2, stride=2)
            if head_upsample == "transposed"
            else nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        )
        self.head = nn.Sequential(nn.Conv3d(c1, out_channels, 1), upsample)  # D/2 -> D
        self.refinement = (
            FullResolutionRefinement(in_channels, out_channels, c1, norm, act) if head_upsample == "refined" else None
        )

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` if ``x`` is not (B, in_channels, D, H, W) with D, H, W multiples of 16."""
        check_volume_input(x, "LightMedSeg", self.in_channels, self.size_divisible)

    def routed_sources(self, skips: list[torch.Tensor], size: list[int]) -> list[torch.Tensor]:
        """
        The encoder features ``E1..E4`` projected to the router width (Eq. 11) and trilinearly resampled to a coarse
        decoder level's ``size``, each (B, C4, *size). Resampling is done before the 1x1x1 projection: both are
        linear and the interpolation weights sum to one, so the result is the paper's, at a fraction of the cost
        for the fine stages (E1 would otherwise be projected to C4 channels at half the input resolution).
        """
        sources: list[torch.Tensor] = []
        for i, projection in enumerate(self.skip_projections):
            feature = skips[i]
            if feature.shape[2:] != size:
                feature = F.interpolate(feature, size=size, mode="trilinear", align_corners=False)
            sources.append(projection(feature))
        return sources

    def forward(
        self, x: torch.Tensor
    ) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:  # noqa: UP007 (TorchScript)
        """
        Args:
            x: input volume, shape (B, in_channels, D, H, W), D, H, W multiples of 16.

        Returns:
            logits of shape (B, out_channels, D, H, W); with ``return_priors`` also the anchors (B, K, 3) and the
            texture map (B, 1, D/2, H/2, W/2).
        """
        self.check_input(x)
        anchors = self.anchor_detector(x)  # (B, K, 3)
        stem = self.stem(x)  # F0: (B, C1, D/2, H/2, W/2)
        features, texture = self.structural_prior(stem)  # F0', T

        skips: list[torch.Tensor] = []  # E1 .. E4 at D/2, D/4, D/8, D/16
        for i, stage in enumerate(self.encoder):
            if i > 0:
                features = self.pool(features)
            features = stage(features, anchors, texture)
            skips.append(features)

        out = self.dropout(self.bottleneck(skips[3]))  # (B, C4, D/16, H/16, W/16)
        routed = self.skip_routers[0](self.routed_sources(skips, skips[3].shape[2:]))
        out = self.decoder[0](out, routed, anchors)  # (B, C4, D/16, H/16, W/16)
        routed = self.skip_routers[1](self.routed_sources(skips, skips[2].shape[2:]))
        out = self.decoder[1](out, routed, anchors)  # (B, C3, D/8, H/8, W/8)
        out = self.decoder[2](out, self.aligned_skips[0](skips[1], skips[1].shape[2:]), anchors)  # (B, C2, D/4, ...)
        # At D/2 every map is large: each is freed once read (peak memory at inference), E1 and F0 before the
        # finest stage, F0's aligned skip before the head.
        skip = self.aligned_skips[1](stem, stem.shape[2:])  # (B, C1, D/2, H/2, W/2)
        del skips, features, stem
        out = self.decoder[3](out, skip, anchors)  # (B, C1, D/2, H/2, W/2)
        del skip
        logits = self.head(self.dropout(out))  # (B, out_channels, D, H, W)
        if self.refinement is not None:
            logits = self.refinement(logits, x)
        if self.return_priors:
            return logits, anchors, texture
        return logits
