from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

from .blocks.refineformer import RefineFormerDecoderStage, RefineFormerEncoderStage
from .input_check import check_network_args, check_volume_input

__all__ = ["RefineFormer3D"]


class RefineFormer3D(nn.Module):
    """
    RefineFormer3D from `RefineFormer3D: Efficient 3D Medical Image Segmentation via Adaptive Multi-Scale Transformer
    with Cross Attention Fusion <https://arxiv.org/abs/2602.16320>`_ (Tyagi, Rathi and Goyal, 2026): a hierarchical
    transformer encoder in the style of SegFormer3D and a U-shaped decoder whose skip connections are fused by
    cross-attention.

    1. Four encoder stages (:class:`RefineFormerEncoderStage`), each a GhostConv3D patch embedding with a
       convolutional position encoding followed by ``depths[i]`` transformer blocks of spatial-reduction attention
       and MixFFN3D (low-rank projections around a depthwise 3x3x3 conv). The embeddings have kernels 7, 3, 3, 3 and
       strides 4, 2, 2, 1: features at 1/4, 1/8, 1/16 and 1/16 of the input size (SegFormer3D's fourth stage works
       at 1/32; here it keeps 1/16 so that inputs need only be multiples of 16).
    2. Three decoder stages (:class:`RefineFormerDecoderStage`) at 1/16, 1/8 and 1/4, each fusing the next finer
       encoder map: project, upsample, cross-attention to the skip map, concatenation, 1x1x1 ghost conv and SE,
       3x3x3 ghost conv refinement.
    3. A head of two 2x2x2 stride-2 transposed convs: to 1/2 of the input size with ``decoder_channels[3]`` maps
       (normalisation, activation), then to the input size with ``out_channels`` maps.

    Every spatial size of the input must be a multiple of 16. The output has the input's size. The paper's text
    gives no layer table; the choices made are listed in ``docs/architecture.md``.

    Args:
        spatial_dims: number of spatial dimensions; RefineFormer3D is defined for 3D volumes only. Defaults to 3.
        in_channels: number of input channels (imaging modalities). Defaults to 1.
        out_channels: number of output channels (classes or regions). Defaults to 2.
        channels: embedding widths of the four encoder stages. Defaults to ``(32, 64, 160, 256)``.
        depths: number of transformer blocks per encoder stage. Defaults to ``(2, 2, 2, 2)``.
        num_heads: attention heads per encoder stage; each must divide the stage width. Defaults to ``(1, 2, 5, 8)``.
        reduction_ratios: spatial reduction ratio of the attention keys and values per encoder stage; it must
            divide ``16 / stride`` of the stage (4, 2, 1, 1), which puts every stage's keys on the 1/16 grid at
            most. Defaults to ``(4, 2, 1, 1)``.
        mlp_ratio: MixFFN3D hidden width as a multiple of the stage width. Defaults to 4.
        rank_ratio: rank of the MixFFN3D low-rank projections as a fraction of the stage width. Defaults to 0.5.
        decoder_channels: widths of the three decoder stages (1/16, 1/8, 1/4) and of the head's 1/2 level.
            Defaults to ``(128, 64, 32, 16)``.
        decoder_num_heads: cross-attention heads of the three decoder stages. Defaults to ``(4, 2, 1)``.
        dropout: channel dropout probability before the last layer; MONAI Label's epistemic (MC-dropout) scoring
            sets it. Defaults to 0.0.
        norm: normalisation of the convolutional decoder layers. Defaults to group norm with 8 groups.
        act: activation of the convolutional decoder layers. Defaults to GELU.
    """

    __constants__ = ["size_divisible"]
    size_divisible = 16  # patch-embedding strides 4 * 2 * 2 * 1
    kernel_sizes = (7, 3, 3, 3)
    strides = (4, 2, 2, 1)

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        channels: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        reduction_ratios: Sequence[int] = (4, 2, 1, 1),
        mlp_ratio: int = 4,
        rank_ratio: float = 0.5,
        decoder_channels: Sequence[int] = (128, 64, 32, 16),
        decoder_num_heads: Sequence[int] = (4, 2, 1),
        dropout: float = 0.0,
        norm: tuple | str = ("group", {"num_groups": 8}),
        act: tuple | str = "gelu",
    ):
        super().__init__()
        check_network_args("RefineFormer3D", spatial_dims, in_channels, out_channels)
        for name, values in (
            ("channels", channels), ("depths", depths), ("num_heads", num_heads), ("reduction_ratios", reduction_ratios)
        ):  # fmt: skip
            if len(values) != 4:
                raise ValueError(f"`{name}` must hold one value per encoder stage (4), got {tuple(values)}.")
        stage_multiple = self.size_divisible
        for i, ratio in enumerate(reduction_ratios):
            stage_multiple //= self.strides[i]  # stage i's sizes are multiples of it
            if ratio < 1 or stage_multiple % ratio != 0:
                raise ValueError(
                    f"`reduction_ratios[{i}]` must divide {stage_multiple} (the sizes of stage {i + 1} are multiples "
                    f"of {stage_multiple} for inputs that are multiples of {self.size_divisible}), got {ratio}."
                )
        if len(decoder_channels) != 4:
            raise ValueError(
                "`decoder_channels` must hold the widths of the 3 decoder stages and of the head, "
                f"got {tuple(decoder_channels)}."
            )
        if len(decoder_num_heads) != 3:
            raise ValueError(
                f"`decoder_num_heads` must hold one value per decoder stage (3), got {tuple(decoder_num_heads)}."
            )
        if mlp_ratio < 1 or not 0.0 < rank_ratio <= 1.0:
            raise ValueError(f"`mlp_ratio` must be >= 1 and `rank_ratio` in (0, 1], got {mlp_ratio}, {rank_ratio}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
        self.in_channels = in_channels
        self.out_channels = out_channels

        enc = [in_channels] + [int(c) for c in channels]
        self.encoder = nn.ModuleList(
            RefineFormerEncoderStage(
                enc[i], enc[i + 1], depths[i], num_heads[i], reduction_ratios[i], mlp_ratio,
                rank=max(1, round(enc[i + 1] * rank_ratio)), kernel_size=self.kernel_sizes[i], stride=self.strides[i],
            )
            for i in range(4)
        )  # fmt: skip
        dec = [enc[4]] + [int(c) for c in decoder_channels]
        self.decoder = nn.ModuleList(
            RefineFormerDecoderStage(
                dec[j], enc[3 - j], dec[j + 1], decoder_num_heads[j], reduction_ratios[2 - j], norm, act
            )
            for j in range(3)
        )  # decoder stage j fuses encoder stage 3 - j (1-based): 1/16, 1/8, 1/4
        self.up = nn.Sequential(
            nn.ConvTranspose3d(dec[3], dec[4], 2, stride=2),
            get_norm_layer(norm, spatial_dims=3, channels=dec[4]),
            get_act_layer(act),
        )
        self.dropout = nn.Dropout3d(dropout)
        self.head = nn.ConvTranspose3d(dec[4], out_channels, 2, stride=2)

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` if ``x`` is not (B, in_channels, D, H, W) with D, H, W multiples of 16."""
        check_volume_input(x, "RefineFormer3D", self.in_channels, self.size_divisible)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input volume, shape (B, in_channels, D, H, W), D, H, W multiples of 16.

        Returns:
            logits of shape (B, out_channels, D, H, W).
        """
        self.check_input(x)
        skips: list[torch.Tensor] = []  # E1 .. E4 at 1/4, 1/8, 1/16, 1/16
        features = x
        for stage in self.encoder:
            features = stage(features)
            skips.append(features)

        out = skips[3]
        for j, stage in enumerate(self.decoder):
            out = stage(out, skips[2 - j])  # (B, C_dec_j, ...) at 1/16, 1/8, 1/4
        out = self.up(out)  # (B, C_dec_4, D/2, H/2, W/2)
        return self.head(self.dropout(out))  # (B, out_channels, D, H, W)
