from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from .down_conv import DownConv
from .jlc import JLC
from .patch_merging import PatchMerging
from .pwa_transformer_block import PWATransformerBlock

__all__ = ["DualStreamEncoder"]


class DualStreamEncoder(nn.Module):
    """
    VeloxSeg's dual-stream encoder (Sec. 3, Fig. 2): a modal-cooperative transformer stream ("glance") and a
    modal-fusion convolution stream ("focus") run side by side over ``S = len(channels)`` stages.

    - Transformer stream: each modality group gets its own patch embedding (kernel and stride ``strides[0]``) and,
      between stages, its own :class:`PatchMerging`; every stage applies ``depth`` :class:`PWATransformerBlock` s,
      whose attention mixes the tokens of all modalities. The first stages use multi-scale paired windows, the last
      attends globally.
    - Convolution stream: all channels together, a :class:`DownConv` (stride ``strides[i]``) per stage followed by
      ``depth`` :class:`JLC` blocks.
    - Modal mixer: at every stage the transformer features of the ``M`` modalities are concatenated and mixed by a
      1x1x1 convolution and a normalisation, and added to the convolution stream after its downsampling.

    Stage ``i`` works at ``1 / prod(strides[: i + 1])`` of the input size, which must be divisible by it.

    Args:
        modality_channels: input channels of each modality group, e.g. ``(1, 1)`` for PET/CT.
        channels: widths of the stages.
        strides: downsampling factor of each stage (the first is the stem's patch size).
        kernel_sizes: kernel sizes of the parallel JLC convolutions.
        group_widths: JLC channels per group, per stage.
        expansions: MLP/FFN hidden-width factors, per stage.
        num_heads: PWA heads per scale, per stage.
        head_dims: PWA query/key channels per head, per stage.
        num_scales: PWA paired-window scales, per stage (1 for the last, global, stage).
        window_size: pooled tokens per axis of a PWA big window.
        depth: JLC and PWA blocks per stage.
        dropout: dropout probability of the JLC and PWA blocks.
        norm: normalisation type and arguments of the convolution stream.
        act: activation type and arguments.
    """

    def __init__(
        self,
        modality_channels: Sequence[int],
        channels: Sequence[int],
        strides: Sequence[int],
        kernel_sizes: Sequence[int],
        group_widths: Sequence[int],
        expansions: Sequence[int],
        num_heads: Sequence[int],
        head_dims: Sequence[int],
        num_scales: Sequence[int],
        window_size: int,
        depth: int,
        dropout: float,
        norm: tuple | str,
        act: tuple | str,
    ):
        super().__init__()
        self.modality_channels = [int(c) for c in modality_channels]
        num_modalities, num_stages = len(self.modality_channels), len(channels)
        self.patch_embeds = nn.ModuleList(
            nn.Conv3d(c, channels[0], strides[0], stride=strides[0]) for c in self.modality_channels
        )
        self.merges = nn.ModuleList(
            nn.ModuleList(PatchMerging(channels[i - 1], channels[i], strides[i]) for _ in range(num_modalities))
            for i in range(1, num_stages)
        )
        self.attention_stages = nn.ModuleList(
            nn.ModuleList(
                PWATransformerBlock(
                    channels[i],
                    num_modalities,
                    num_heads[i],
                    head_dims[i],
                    num_scales[i],
                    window_size,
                    i == num_stages - 1,
                    expansions[i],
                    dropout,
                    act,
                )
                for _ in range(depth)
            )
            for i in range(num_stages)
        )
        self.modal_mixers = nn.ModuleList(
            nn.Sequential(nn.Conv3d(num_modalities * c, c, 1), get_norm_layer(norm, spatial_dims=3, channels=c))
            for c in channels
        )
        widths = [sum(self.modality_channels), *channels]
        self.downs = nn.ModuleList(DownConv(widths[i], widths[i + 1], strides[i], norm) for i in range(num_stages))
        self.conv_stages = nn.ModuleList(
            nn.Sequential(
                *(
                    JLC(channels[i], kernel_sizes, group_widths[i], expansions[i], dropout, norm, act)
                    for _ in range(depth)
                )
            )
            for i in range(num_stages)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """
        Args:
            x: input (B, sum(modality_channels), D, H, W), D, H, W multiples of ``prod(strides)``.

        Returns:
            the convolution stream's features of every stage, stage ``i`` (B, channels[i], D / prod(strides[: i + 1]),
            ...).
        """
        tokens = [embed(m) for embed, m in zip(self.patch_embeds, x.split(self.modality_channels, dim=1), strict=True)]
        conv = x
        features: list[torch.Tensor] = []
        for i, (blocks, mixer, down, stage) in enumerate(
            zip(self.attention_stages, self.modal_mixers, self.downs, self.conv_stages, strict=True)
        ):
            if i > 0:
                tokens = [merge(t) for merge, t in zip(self.merges[i - 1], tokens, strict=True)]
            for block in blocks:
                tokens = block(tokens)  # M x (B, C_i, D_i, H_i, W_i)
            conv = stage(down(conv) + mixer(torch.cat(tokens, dim=1)))
            features.append(conv)
        return features
