from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .selective_scan import SelectiveSSM

__all__ = ["MambaLayer"]


class MambaLayer(nn.Module):
    """
    SegMaFormer's token mixer in the early, high-resolution encoder stages: a Mamba block (Gu and Dao,
    `arXiv:2312.00752 <https://arxiv.org/abs/2312.00752>`_, Fig. 3) run on a spatially reduced token grid.

    1. Sequence reduction (as SegFormer's efficient attention): a ``r x r x r`` stride-``r`` convolution and a
       LayerNorm shorten the sequence ``r^3``-fold, giving the layer its ``O(N / r . C^2)`` cost; skipped for r = 1.
    2. Mamba block: ``[x, z] = W_in t`` (inner width ``E = expand * C``); ``x`` goes through a causal depthwise
       1D convolution, SiLU and the selective SSM (:class:`SelectiveSSM`) once along the raster order of the grid
       and once against it (own convolution and SSM parameters per direction, as in Vision Mamba), the two
       results are summed, gated by ``SiLU(z)`` and projected back to ``C`` channels.
    3. The output grid is trilinearly resampled back to the input grid.

    Args:
        channels: token width ``C``.
        state_size: SSM state size ``N``. Defaults to 8.
        expand: inner width ``E`` as a multiple of ``C``. Defaults to 2.
        conv_kernel: kernel size of the causal depthwise convolution. Defaults to 4.
        reduction: sequence-reduction ratio ``r`` per axis; the grid must be divisible by it. Defaults to 1.
        chunk_size: scan chunk length, see :func:`selective_scan`. Defaults to 64.
    """

    def __init__(
        self,
        channels: int,
        state_size: int = 8,
        expand: int = 2,
        conv_kernel: int = 4,
        reduction: int = 1,
        chunk_size: int = 64,
    ):
        super().__init__()
        if expand < 1 or conv_kernel < 1 or reduction < 1:
            raise ValueError(
                f"`expand`, `conv_kernel` and `reduction` must be positive, got {expand}, {conv_kernel}, {reduction}."
            )
        inner = expand * channels
        self.reduction = reduction
        self.reduce = nn.Conv3d(channels, channels, reduction, stride=reduction) if reduction > 1 else nn.Identity()
        self.reduce_norm = nn.LayerNorm(channels) if reduction > 1 else nn.Identity()
        self.in_proj = nn.Linear(channels, 2 * inner, bias=False)
        self.convs = nn.ModuleList(
            nn.Conv1d(inner, inner, conv_kernel, padding=conv_kernel - 1, groups=inner) for _ in range(2)
        )
        self.ssms = nn.ModuleList(SelectiveSSM(inner, state_size, chunk_size=chunk_size) for _ in range(2))
        self.out_proj = nn.Linear(inner, channels, bias=False)

    def forward(self, x: torch.Tensor, grid: list[int]) -> torch.Tensor:
        """
        Args:
            x: tokens, shape (B, N, C), raster order of ``grid``.
            grid: token grid (D, H, W), each divisible by ``reduction``.

        Returns:
            shape (B, N, C).
        """
        b, n, c = x.shape
        reduced_grid = grid
        if self.reduction > 1:
            volume = self.reduce(x.transpose(1, 2).reshape(b, c, grid[0], grid[1], grid[2]))  # (B, C, D/r, H/r, W/r)
            reduced_grid = [volume.shape[2], volume.shape[3], volume.shape[4]]
            x = self.reduce_norm(volume.flatten(2).transpose(1, 2))  # (B, N / r^3, C)
        seq, gate = self.in_proj(x).chunk(2, dim=-1)  # (B, L, E) each
        length = seq.shape[1]
        mixed = torch.zeros_like(seq)
        for direction, (conv, ssm) in enumerate(zip(self.convs, self.ssms)):  # noqa: B905 (TorchScript: no strict=)
            source = seq if direction == 0 else seq.flip(1)  # raster order, then reversed
            hidden = F.silu(conv(source.transpose(1, 2))[..., :length]).transpose(1, 2)  # causal conv: (B, L, E)
            scanned = ssm(hidden)
            mixed = mixed + (scanned if direction == 0 else scanned.flip(1))
        out = self.out_proj(mixed * F.silu(gate))  # (B, L, C)
        if self.reduction > 1:
            volume = out.transpose(1, 2).reshape(b, c, reduced_grid[0], reduced_grid[1], reduced_grid[2])
            volume = F.interpolate(volume, size=grid, mode="trilinear", align_corners=False)  # (B, C, D, H, W)
            out = volume.flatten(2).transpose(1, 2)
        return out
