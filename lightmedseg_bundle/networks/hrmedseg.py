from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks.hrmedseg import ECMDecoder, LGViT
from .input_check import check_network_args, check_volume_input

__all__ = ["HRMedSeg"]


class HRMedSeg(nn.Module):
    """
    HRMedSeg from `HRMedSeg: Unlocking High-resolution Medical Image segmentation via Memory-efficient Attention
    Modeling` (Xu et al., arXiv:2504.06205), adapted from 2D to 3D volumes:

    1. :class:`LGViT`, a lightweight gated vision transformer encoder: a ``p x p x p`` patch embedding, a stage of
       MBConv blocks, then gated linear-attention blocks whose cost grows linearly with the number of tokens, all
       at one token grid (1/p of the input) and one width;
    2. :class:`ECMDecoder`, the efficient cross-multiscale decoder: one learned token per class exchanges
       information with the image tokens in a two-way transformer at 1/p, the image tokens are upscaled 4x by
       transposed convolutions, and each class token's hypernetwork vector is dotted with them to give the class
       logits at 4/p of the input size;
    3. trilinear interpolation of the logits to the input size (for ``patch_size`` above 4).

    The paper's SAM-feature-distillation pretraining is not part of this class. Every spatial size of the input
    must be a multiple of ``patch_size`` (8 by default, so any multiple of 16 works). The 3D adaptation and the
    choices made where the sources are vague are listed in ``docs/architecture.md``.

    Args:
        spatial_dims: number of spatial dimensions; this adaptation is 3D only. Defaults to 3.
        in_channels: number of input channels (imaging modalities). Defaults to 1.
        out_channels: number of output channels (classes); one decoder token each. Defaults to 2.
        embed_dim: token width of the encoder. Defaults to 96, as in the public HRMedSeg/SAM model.
        patch_size: edge of the cubic patches; a power of two, at least 4. Defaults to 8 (512 voxels a patch, the
            2D model's 16 x 16 = 256 pixels in size order).
        depths: blocks per encoder stage: the MBConv stage first, then the transformer stages.
            Defaults to ``(2, 2, 6, 2)``.
        num_heads: attention heads of each transformer stage (``len(depths) - 1`` entries). Defaults to
            ``(6, 12, 24)``.
        mlp_ratio: expansion ratio of the MBConv blocks and transformer MLPs. Defaults to 2.0.
        decoder_dim: width of the ECM-Decoder (SAM's transformer width). Defaults to 256.
        decoder_depth: number of two-way transformer layers. Defaults to 2.
        decoder_heads: attention heads of the decoder. Defaults to 8.
        decoder_mlp_dim: hidden width of the decoder's token MLPs. Defaults to 256.
        drop_path_rate: stochastic-depth rate of the encoder's transformer blocks. Defaults to 0.1.
        norm: normalisation of the MBConv blocks. Defaults to group norm with 8 groups.
        act: activation of the MBConv blocks and transformer MLPs. Defaults to GELU.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        embed_dim: int = 96,
        patch_size: int = 8,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (6, 12, 24),
        mlp_ratio: float = 2.0,
        decoder_dim: int = 256,
        decoder_depth: int = 2,
        decoder_heads: int = 8,
        decoder_mlp_dim: int = 256,
        drop_path_rate: float = 0.1,
        norm: tuple | str = ("group", {"num_groups": 8}),
        act: tuple | str = "gelu",
    ):
        super().__init__()
        check_network_args("HRMedSeg", spatial_dims, in_channels, out_channels)
        if patch_size < 4 or patch_size & (patch_size - 1) != 0:
            raise ValueError(
                f"`patch_size` must be a power of two of at least 4 (the decoder upscales 4x), got {patch_size}."
            )
        if len(depths) < 2 or len(num_heads) != len(depths) - 1:
            raise ValueError(
                f"`depths` needs the MBConv stage and at least one transformer stage, and `num_heads` one entry per "
                f"transformer stage; got depths={tuple(depths)}, num_heads={tuple(num_heads)}."
            )
        for heads in num_heads:
            if embed_dim % heads != 0 or (embed_dim // heads) % 2 != 0:
                raise ValueError(
                    f"every entry of `num_heads` must split `embed_dim` ({embed_dim}) into heads of an even width "
                    f"(RoPE rotates channel pairs), got {heads}."
                )
        if decoder_dim % 8 != 0 or (decoder_dim // 2) % decoder_heads != 0:
            raise ValueError(
                f"`decoder_dim` must be a multiple of 8 whose half `decoder_heads` divides, "
                f"got decoder_dim={decoder_dim}, decoder_heads={decoder_heads}."
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"`drop_path_rate` must be in [0, 1), got {drop_path_rate}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_divisible = patch_size

        self.encoder = LGViT(
            in_channels, embed_dim, patch_size, depths, num_heads, mlp_ratio, norm, act, drop_path_rate
        )
        self.decoder = ECMDecoder(
            embed_dim, out_channels, decoder_dim, decoder_depth, decoder_heads, decoder_mlp_dim, downsample_rate=2
        )

    def check_input(self, x: torch.Tensor) -> None:
        """Raises ``ValueError`` if ``x`` is not (B, in_channels, D, H, W) with D, H, W multiples of the patch size."""
        check_volume_input(x, "HRMedSeg", self.in_channels, self.size_divisible)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input volume, shape (B, in_channels, D, H, W), D, H, W multiples of ``patch_size``.

        Returns:
            logits of shape (B, out_channels, D, H, W).
        """
        self.check_input(x)
        features = self.encoder(x)  # (B, embed_dim, D/p, H/p, W/p)
        logits = self.decoder(features)  # (B, out_channels, 4D/p, 4H/p, 4W/p)
        if self.size_divisible != 4:
            logits = F.interpolate(logits, size=x.shape[2:], mode="trilinear", align_corners=False)
        return logits
