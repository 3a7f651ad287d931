from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .blocks.veloxseg import JLC, DualStreamEncoder, PixelShuffle3d, UpConv
from .input_check import check_network_args, check_volume_input

__all__ = ["VeloxSeg"]


class VeloxSeg(nn.Module):
    """
    VeloxSeg from `Johnson-Lindenstrauss Lemma Guided Network for Efficient 3D Medical Segmentation`
    (Lu et al., ICLR 2026, https://arxiv.org/abs/2509.22307): a lightweight dual-stream CNN-Transformer U-Net.

    1. :class:`DualStreamEncoder`: a modal-cooperative transformer stream of Paired Window Attention (PWA, the
       multi-scale "glance") and a modal-fusion convolution stream of JL-lemma guided grouped convolutions (JLC, the
       robust local "focus"), joined at every stage by a 1x1x1 modal mixer. With the default ``strides`` the stages
       work at 1/4 (stride-4 stem), 1/8, 1/16 and 1/16 of the input size: the reference model's last stride-2
       transition is made stride 1 so that the bundle's 48x64x48 patches keep a 3x4x3 bottleneck (see below).
    2. Decoder: per level a transposed convolution (kernel = stride) and normalisation, added to the encoder's
       convolution features, then ``depth`` JLC blocks.
    3. Head: a 3x3x3 convolution predicting the ``s^3`` sub-voxels of every stem position (``s = strides[0]``),
       rearranged to the input resolution by a 3D pixel shuffle.

    Spatially Decoupled Knowledge Transfer (SDKT) is a training-time loss on the channel Gram matrix of the
    1/4-resolution decoder features, the output of the submodule named by ``sdkt_feature_layer``; see
    :class:`lightmedseg_bundle.losses.sdkt.SDKTLoss`. It adds no parameters and leaves ``forward`` unchanged.

    Every spatial size of the input must be a multiple of ``prod(strides)`` (16 by default), and at least one of them
    twice that, so that the instance-normalised bottleneck has more than one voxel. The output has the input's
    spatial size. The choices made where the paper and its code leave room are listed in ``docs/architecture.md``.

    Args:
        spatial_dims: number of spatial dimensions; VeloxSeg is implemented for 3D volumes only. Defaults to 3.
        in_channels: number of input channels. Defaults to 1.
        out_channels: number of output channels (classes or regions). Defaults to 2.
        modality_channels: channels of each modality group, in input order, e.g. ``(1, 1)`` for PET/CT; each
            group gets its own transformer stream and the PWA attends across groups. Must sum to ``in_channels``.
            Defaults to None: all channels form one group (as the reference code's BraTS setting ``in_ch=[4]``).
        channels: widths of the encoder stages; the decoder mirrors them. Defaults to ``(16, 32, 64, 128)``.
        strides: downsampling factor of every stage: the stem's patch size, then 1 or 2 per later stage.
            Defaults to ``(4, 2, 2, 1)``.
        kernel_sizes: kernel sizes of the parallel JLC convolutions. Defaults to ``(1, 3, 5)``.
        group_widths: JLC channels per group, per stage (the JL-guided group dimension). Defaults to
            ``(4, 8, 8, 16)``.
        expansions: hidden-width factors of the JLC channel MLPs and the PWA feed-forward networks, per stage.
            Defaults to ``(3, 3, 2, 2)``.
        num_heads: PWA heads per scale, per stage. Defaults to ``(1, 2, 2, 4)``.
        head_dims: PWA query/key channels per head, per stage. Defaults to ``(4, 8, 8, 16)``.
        num_scales: PWA paired-window scales, per stage; the last stage attends globally and needs 1.
            Defaults to ``(4, 2, 2, 1)``.
        window_size: pooled tokens per axis of a PWA big window. Defaults to 4.
        depth: JLC (encoder and decoder) and PWA blocks per stage; 1 is the paper's base model, 2 its "L" model.
            Defaults to 1.
        dropout: dropout probability of the JLC and PWA blocks. Defaults to 0.1.
        norm: normalisation of the convolution stream and the decoder. Defaults to instance norm.
        act: activation type and arguments. Defaults to GELU.
    """

    sdkt_feature_layer = "decoder_stages.0"  # 1/4-resolution decoder features (B, channels[0], D/4, H/4, W/4)

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        modality_channels: Sequence[int] | None = None,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[int] = (4, 2, 2, 1),
        kernel_sizes: Sequence[int] = (1, 3, 5),
        group_widths: Sequence[int] = (4, 8, 8, 16),
        expansions: Sequence[int] = (3, 3, 2, 2),
        num_heads: Sequence[int] = (1, 2, 2, 4),
        head_dims: Sequence[int] = (4, 8, 8, 16),
        num_scales: Sequence[int] = (4, 2, 2, 1),
        window_size: int = 4,
        depth: int = 1,
        dropout: float = 0.1,
        norm: tuple | str = "instance",
        act: tuple | str = "gelu",
    ):
        super().__init__()
        check_network_args("VeloxSeg", spatial_dims, in_channels, out_channels)
        modality_channels = [in_channels] if modality_channels is None else [int(c) for c in modality_channels]
        if not modality_channels or min(modality_channels) < 1 or sum(modality_channels) != in_channels:
            raise ValueError(
                f"`modality_channels` must be positive channel counts summing to `in_channels` ({in_channels}), "
                f"got {modality_channels}."
            )
        num_stages = len(channels)
        if num_stages < 2:
            raise ValueError(f"`channels` needs at least 2 stages, got {tuple(channels)}.")
        per_stage = {
            "strides": strides,
            "group_widths": group_widths,
            "expansions": expansions,
            "num_heads": num_heads,
            "head_dims": head_dims,
            "num_scales": num_scales,
        }
        for name, values in per_stage.items():
            if len(values) != num_stages or min(values) < 1:
                raise ValueError(
                    f"`{name}` must hold one positive value per stage ({num_stages} stages), got {tuple(values)}."
                )
        if any(s not in (1, 2) for s in strides[1:]):
            raise ValueError(f"`strides` after the stem must be 1 or 2, got {tuple(strides)}.")
        for c, width in zip(channels, group_widths, strict=True):
            if c % width != 0:
                raise ValueError(f"every JLC group width must divide its stage width, got {width} for {c} channels.")
        if num_scales[-1] != 1:
            raise ValueError(f"the last stage attends globally, so `num_scales[-1]` must be 1, got {num_scales[-1]}.")
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"`kernel_sizes` must be odd positive sizes, got {tuple(kernel_sizes)}.")
        if window_size < 1 or depth < 1:
            raise ValueError(f"`window_size` and `depth` must be positive, got {window_size}, {depth}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_divisible = math.prod(strides)

        self.encoder = DualStreamEncoder(
            modality_channels,
            channels,
            strides,
            kernel_sizes,
            group_widths,
            expansions,
            num_heads,
            head_dims,
            num_scales,
            window_size,
            depth,
            dropout,
            norm,
            act,
        )
        self.ups = nn.ModuleList(
            UpConv(channels[i + 1], channels[i], strides[i + 1], norm) for i in range(num_stages - 1)
        )
        self.decoder_stages = nn.ModuleList(
            nn.Sequential(
                *(
                    JLC(channels[i], kernel_sizes, group_widths[i], expansions[i], dropout, norm, act)
                    for _ in range(depth)
                )
            )
            for i in range(num_stages - 1)
        )
        self.head = nn.Sequential(
            nn.Conv3d(channels[0], out_channels * strides[0] ** 3, 3, padding=1), PixelShuffle3d(strides[0])
        )

    def check_input(self, x: torch.Tensor) -> None:
        """
        Raises ``ValueError`` if ``x`` is not (B, in_channels, D, H, W) with D, H, W multiples of ``size_divisible``
        and at least one of them twice that.
        """
        check_volume_input(x, "VeloxSeg", self.in_channels, self.size_divisible)
        spatial = list(x.shape[2:])
        if max(spatial) < 2 * self.size_divisible:
            raise ValueError(
                f"VeloxSeg needs at least one spatial size of {2 * self.size_divisible} or more, got {spatial}: the "
                f"instance-normalised bottleneck at 1/{self.size_divisible} resolution must hold more than one voxel."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: input volume, shape (B, in_channels, D, H, W), D, H, W multiples of ``size_divisible``.

        Returns:
            logits of shape (B, out_channels, D, H, W).
        """
        self.check_input(x)
        if torch.jit.is_tracing():
            size = tuple(int(s) for s in x.shape[2:])
            warnings.warn(
                f"VeloxSeg's attention windows and padding depend on the input size: this traced graph (e.g. an ONNX "
                f"export) is only valid for spatial size {size}; export without dynamic spatial axes, at the "
                "sliding-window roi_size.",
                stacklevel=2,
            )
        skips = self.encoder(x)  # stage i: (B, C_i, D / prod(strides[: i + 1]), ...)
        out = skips[-1]
        for i in range(len(self.ups) - 1, -1, -1):
            out = self.decoder_stages[i](skips[i] + self.ups[i](out))  # (B, C_i, *skips[i].shape[2:])
        return self.head(out)  # (B, out_channels, D, H, W)
