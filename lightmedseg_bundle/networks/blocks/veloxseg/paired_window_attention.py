from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.layers import trunc_normal_
from torch import nn

from ..channel_layer_norm import ChannelLayerNorm

__all__ = ["PairedWindowAttention"]


def window_partition(x: torch.Tensor, window: list[int], heads: int) -> torch.Tensor:
    """(B, heads * c, D, H, W), D, H, W multiples of ``window`` -> (B * nW, heads, T, c), T = prod(window)."""
    b, channels, d, h, w = x.shape
    wd, wh, ww = window
    x = x.reshape(b, heads, channels // heads, d // wd, wd, h // wh, wh, w // ww, ww)
    x = x.permute(0, 3, 5, 7, 1, 4, 6, 8, 2)  # (B, nd, nh, nw, heads, wd, wh, ww, c)
    return x.reshape(-1, heads, wd * wh * ww, channels // heads)


def window_reverse(x: torch.Tensor, window: list[int], batch: int, grid: list[int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, heads, T, c) -> (B, heads * c, *grid)."""
    _, heads, _, c = x.shape
    (wd, wh, ww), (d, h, w) = window, grid
    x = x.reshape(batch, d // wd, h // wh, w // ww, heads, wd, wh, ww, c)
    x = x.permute(0, 4, 8, 1, 5, 2, 6, 3, 7)  # (B, heads, c, nd, wd, nh, wh, nw, ww)
    return x.reshape(batch, heads * c, d, h, w)


class PairedWindowAttention(nn.Module):
    """
    Multi-modal Paired Window Attention (PWA) of VeloxSeg (Sec. 3.1), the "glance" half of the network.

    The query/key/value channels are split into ``num_scales`` groups of ``num_heads`` heads each. Scale ``s``
    pairs a *big* window with a *small* window: the features are max-pooled over small windows of ``2^s`` voxels
    and attention runs among the ``window_size^3`` pooled tokens of each big window (``window_size * 2^s`` voxels
    per axis), so every scale costs the same per token while the receptive field doubles per scale; the output is
    trilinearly upsampled back to the feature grid. Scale 0 is plain window attention at full resolution. With
    ``global_window`` the single scale attends over the whole feature grid (VeloxSeg's last stage).

    Modal interaction: each modality ``m`` has its own layer norm and q/k/v/output projections, and the tokens of
    all modalities that fall in the same window are concatenated, so attention is computed jointly across
    modalities (``M * T`` tokens per window). A learnable relative position bias (relative offsets clipped to
    ``+-(window_size - 1)``, shared by the scales and repeated over modality pairs) is added to the logits.

    Grids that are not a multiple of the window are zero-padded and the padded keys are masked out; a pooled grid
    smaller than the window becomes a single (smaller) window.

    Args:
        channels: channels ``C`` of every modality's features.
        num_modalities: number of modality streams ``M``. Defaults to 1.
        num_heads: heads per scale. Defaults to 1.
        head_dim: query/key channels per head. Defaults to 4.
        num_scales: number of paired-window scales. Defaults to 1.
        window_size: pooled tokens per axis of a big window; also the clipping range of the position bias.
            Defaults to 4.
        global_window: attend over the whole grid (requires ``num_scales == 1``). Defaults to False.
        dropout: dropout on the attention weights and the output projection. Defaults to 0.0.
    """

    def __init__(
        self,
        channels: int,
        num_modalities: int = 1,
        num_heads: int = 1,
        head_dim: int = 4,
        num_scales: int = 1,
        window_size: int = 4,
        global_window: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if global_window and num_scales != 1:
            raise ValueError(f"a global PWA window has a single scale, got `num_scales`={num_scales}.")
        self.num_modalities = num_modalities
        self.num_heads = num_heads
        self.num_scales = num_scales
        self.window_size = window_size
        self.global_window = global_window
        self.dropout = dropout
        self.qk_channels = num_scales * num_heads * head_dim
        self.v_channels = math.ceil(channels / self.qk_channels) * self.qk_channels
        qkv_channels = 2 * self.qk_channels + self.v_channels
        self.norms = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(num_modalities))
        self.qkv = nn.ModuleList(nn.Conv3d(channels, qkv_channels, 1) for _ in range(num_modalities))
        self.proj = nn.ModuleList(nn.Conv3d(self.v_channels, channels, 1) for _ in range(num_modalities))
        self.proj_drop = nn.Dropout(dropout)
        self.relative_position_bias = nn.Parameter(torch.zeros((2 * window_size - 1) ** 3, num_heads))
        trunc_normal_(self.relative_position_bias, std=0.02)

    def position_bias(self, window: list[int], device: torch.device) -> torch.Tensor:
        """Relative position bias of one window, repeated over modality pairs: (heads, M T, M T)."""
        axes = [torch.arange(n, device=device) for n in window]
        coords = torch.stack(torch.meshgrid(axes, indexing="ij")).flatten(1)  # (3, T)
        extent = self.window_size - 1
        relative = (coords[:, :, None] - coords[:, None, :]).clamp(-extent, extent) + extent  # (3, T, T)
        span = 2 * self.window_size - 1
        index = (relative[0] * span + relative[1]) * span + relative[2]
        bias = self.relative_position_bias[index].permute(2, 0, 1)  # (heads, T, T)
        return bias.repeat(1, self.num_modalities, self.num_modalities)

    def scale_attention(
        self, qs: list[torch.Tensor], ks: list[torch.Tensor], vs: list[torch.Tensor], pool: int
    ) -> list[torch.Tensor]:
        """Attention of one scale; inputs per modality (B, heads * c, D, H, W), outputs (B, heads * c_v, D, H, W)."""
        size = list(qs[0].shape[2:])
        if pool > 1:
            qs, ks, vs = ([F.max_pool3d(t, pool, pool, ceil_mode=True) for t in ts] for ts in (qs, ks, vs))
        grid = list(qs[0].shape[2:])  # pooled grid
        window = grid if self.global_window else [min(self.window_size, n) for n in grid]
        pad = [(-n) % w for n, w in zip(grid, window, strict=True)]
        padded = [n + p for n, p in zip(grid, pad, strict=True)]
        if any(pad):
            widths = [0, pad[2], 0, pad[1], 0, pad[0]]
            qs, ks, vs = ([F.pad(t, widths) for t in ts] for ts in (qs, ks, vs))
        batch, heads = qs[0].shape[0], self.num_heads
        q = torch.cat([window_partition(t, window, heads) for t in qs], dim=2)  # (B nW, heads, M T, c)
        k = torch.cat([window_partition(t, window, heads) for t in ks], dim=2)
        v = torch.cat([window_partition(t, window, heads) for t in vs], dim=2)  # (B nW, heads, M T, c_v)
        mask = self.position_bias(window, q.device).to(q.dtype)[None]  # (1, heads, M T, M T)
        if any(pad):
            valid = window_partition(F.pad(q.new_ones(1, 1, *grid), widths), window, 1)  # (nW, 1, T, 1)
            valid = valid.transpose(2, 3).repeat(batch, 1, 1, self.num_modalities)  # (B nW, 1, 1, M T)
            mask = mask.masked_fill(valid == 0, torch.finfo(q.dtype).min)  # padded keys: (B nW, heads, M T, M T)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        outs = []
        for part in out.chunk(self.num_modalities, dim=2):
            part = window_reverse(part, window, batch, padded)[:, :, : grid[0], : grid[1], : grid[2]]
            if pool > 1:
                part = F.interpolate(part, size=size, mode="trilinear", align_corners=False)
            outs.append(part)
        return outs

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """
        Args:
            xs: features of the ``M`` modalities, each (B, C, D, H, W).

        Returns:
            the attention outputs added to the inputs (residual), each (B, C, D, H, W).
        """
        qkv = [
            proj(norm(x)) for proj, norm, x in zip(self.qkv, self.norms, xs, strict=True)
        ]  # (B, 2 C_qk + C_v, D, H, W)
        qk_step = self.qk_channels // self.num_scales
        v_step = self.v_channels // self.num_scales
        per_scale: list[list[torch.Tensor]] = []
        for s in range(self.num_scales):
            qs = [t[:, s * qk_step : (s + 1) * qk_step] for t in qkv]
            ks = [t[:, self.qk_channels + s * qk_step : self.qk_channels + (s + 1) * qk_step] for t in qkv]
            v0 = 2 * self.qk_channels + s * v_step
            vs = [t[:, v0 : v0 + v_step] for t in qkv]
            per_scale.append(self.scale_attention(qs, ks, vs, 2**s))
        outs = []
        for m, (x, proj) in enumerate(zip(xs, self.proj, strict=True)):
            attended = torch.cat([scale[m] for scale in per_scale], dim=1)  # (B, C_v, D, H, W)
            outs.append(x + self.proj_drop(proj(attended)))
        return outs
