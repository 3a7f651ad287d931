from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .blocks.segmaformer import (
    AllMLPDecoder,
    HybridEncoderBlock,
    HybridEncoderStage,
    MambaLayer,
    OverlapPatchEmbed3d,
    RoPESelfAttention,
)
from .input_check import check_network_args, check_volume_input

__all__ = ["SegMaFormer"]


class SegMaFormer(nn.Module):
    """
    SegMaFormer from `SegMaFormer: A Hybrid State-Space and Transformer Model for Efficient Segmentation`
    (Nguyen and Tran-Truong, `arXiv:2603.22002 <https://arxiv.org/abs/2603.22002>`_): a SegFormer3D-style network
    whose hierarchical volumetric encoder mixes tokens with Mamba layers in the early, high-resolution stages and
    with self-attention carrying 3D rotary position embeddings in the late ones, followed by an all-MLP decoder.

    1. Four encoder stages (:class:`HybridEncoderStage`), each an overlapping patch embedding (kernel 7 / stride 4,
       then 3 / 2) and ``depths[i]`` pre-norm blocks of token mixer + Mix-FFN (:class:`HybridEncoderBlock`);
       stages ``1..num_mamba_stages`` mix with a bidirectional :class:`MambaLayer` on a sequence reduced
       ``mamba_reductions[i]``-fold per axis, the others with full :class:`RoPESelfAttention`.
    2. :class:`AllMLPDecoder`: the four stages are projected to ``decoder_channels``, fused at 1/4 of the input
       size, classified, and the logits trilinearly upsampled to the input size.

    The output has the input's spatial size. Every spatial size must be a multiple of ``size_divisible``: 4 (the
    first embedding's stride) times what the sequence reductions need, 8 with the defaults; the stride-2 embeddings
    round odd grids up, so e.g. 48 -> 12 -> 6 -> 3 -> 2 tokens. The choices made where the paper is not specific
    are listed in ``docs/architecture.md``.

    Args:
        spatial_dims: number of spatial dimensions; SegMaFormer is defined for 3D volumes only. Defaults to 3.
        in_channels: number of input channels (imaging modalities). Defaults to 1.
        out_channels: number of output channels (classes or regions). Defaults to 2.
        embed_dims: token widths of the four encoder stages. Defaults to ``(32, 64, 96, 160)``.
        depths: number of blocks per stage. Defaults to ``(2, 2, 2, 2)``.
        num_mamba_stages: how many leading stages use Mamba layers; the rest use self-attention. Defaults to 2.
        mamba_reductions: sequence-reduction ratio per axis of each Mamba stage. Defaults to ``(2, 1)``.
        state_size: SSM state size ``N`` of the Mamba layers. Defaults to 8.
        expand: inner width of the Mamba layers as a multiple of the stage width. Defaults to 2.
        chunk_size: length of the chunks the selective scan processes in parallel. Defaults to 64.
        head_dim: channels per attention head; must divide the attention stages' widths. Defaults to 32.
        mlp_ratio: Mix-FFN hidden width as a multiple of the stage width. Defaults to 4.
        decoder_channels: width of the all-MLP decoder. Defaults to 128.
        dropout: channel dropout before the decoder's classifier. Defaults to 0.0.
        norm: normalisation after the decoder's fusion layer. Defaults to batch norm.
        act: activation after the decoder's fusion layer. Defaults to ReLU.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        embed_dims: Sequence[int] = (32, 64, 96, 160),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_mamba_stages: int = 2,
        mamba_reductions: Sequence[int] = (2, 1),
        state_size: int = 8,
        expand: int = 2,
        chunk_size: int = 64,
        head_dim: int = 32,
        mlp_ratio: int = 4,
        decoder_channels: int = 128,
        dropout: float = 0.0,
        norm: tuple | str = "batch",
        act: tuple | str = "relu",
    ):
        super().__init__()
        check_network_args("SegMaFormer", spatial_dims, in_channels, out_channels)
        if len(embed_dims) != 4 or len(depths) != 4:
            raise ValueError(
                f"`embed_dims` and `depths` must hold one value for each of the 4 encoder stages, "
                f"got {tuple(embed_dims)} and {tuple(depths)}."
            )
        if min(embed_dims) < 1 or min(depths) < 1:
            raise ValueError(f"`embed_dims` and `depths` must be positive, got {tuple(embed_dims)}, {tuple(depths)}.")
        if not 0 <= num_mamba_stages <= 4:
            raise ValueError(f"`num_mamba_stages` must be between 0 and 4, got {num_mamba_stages}.")
        if len(mamba_reductions) != num_mamba_stages or min(mamba_reductions, default=1) < 1:
            raise ValueError(
                f"`mamba_reductions` must hold one positive ratio per Mamba stage ({num_mamba_stages}), "
                f"got {tuple(mamba_reductions)}."
            )
        for width in embed_dims[num_mamba_stages:]:
            if width % head_dim != 0:
                raise ValueError(f"`head_dim` ({head_dim}) must divide every attention stage's width, got {width}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        # the first embedding's stride, and every reducing Mamba stage (at stride 4 * 2^i) needs a grid divisible by r
        self.size_divisible = math.lcm(4, *(4 * 2**i * r for i, r in enumerate(mamba_reductions) if r > 1))

        stages: list[HybridEncoderStage] = []
        for i, (width, depth) in enumerate(zip(embed_dims, depths, strict=True)):
            embedding = OverlapPatchEmbed3d(
                in_channels if i == 0 else embed_dims[i - 1], width, 7 if i == 0 else 3, 4 if i == 0 else 2
            )
            blocks = [
                HybridEncoderBlock(
                    width,
                    (
                        MambaLayer(width, state_size, expand, reduction=mamba_reductions[i], chunk_size=chunk_size)
                        if i < num_mamba_stages
                        else RoPESelfAttention(width, width // head_dim)
                    ),
                    mlp_ratio,
                )
                for _ in range(depth)
            ]
            stages.append(HybridEncoderStage(embedding, blocks))
        self.encoder = nn.ModuleList(stages)
        self.decoder = AllMLPDecoder(embed_dims, decoder_channels, out_channels, dropout, norm, act)

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` if ``x`` is not (B, in_channels, D, H, W) with D, H, W multiples of size_divisible."""
        check_volume_input(x, "SegMaFormer", self.in_channels, self.size_divisible)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input volume, shape (B, in_channels, D, H, W), D, H, W multiples of ``size_divisible``.

        Returns:
            logits of shape (B, out_channels, D, H, W).
        """
        self.check_input(x)
        features: list[torch.Tensor] = []  # at 1/4, 1/8, 1/16, 1/32 of the input (rounded up)
        out = x
        for stage in self.encoder:
            out = stage(out)
            features.append(out)
        return self.decoder(features, [x.shape[2], x.shape[3], x.shape[4]])
