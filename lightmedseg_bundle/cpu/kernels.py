"""
Faster CPU forward passes for ``nn.Conv3d``, ``nn.ConvTranspose3d`` and ``nn.Upsample``, swapped in by
:func:`~lightmedseg_bundle.cpu.optimize_for_cpu`.

Each class only overrides ``forward``: its instances are the original modules with their class replaced, so
parameters, initialisation, hooks and state-dict layout are those of the PyTorch module, and the result is the same
up to float rounding. The networks never construct these classes themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "OneDNNConv3d",
    "DepthwiseConv3d",
    "SingleOutputConv3d",
    "PointwiseConv3d",
    "PatchExpandConv3d",
    "TrilinearUpsample",
]


def _runs_on_onednn(x: torch.Tensor) -> bool:
    """Whether ``x`` may take the hand-picked CPU paths: float32 on the CPU and not being traced for export."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.jit.is_tracing()


class OneDNNConv3d(nn.Conv3d):
    """
    An ``nn.Conv3d`` that always runs on oneDNN for float32 CPU tensors.

    PyTorch sends a dense 3D convolution of a single volume to its im2col fallback when ``B * C * D * H`` is at most
    20480, which holds for LightMedSeg's convolutions at 1/4 of a 128^3 input and below; the fallback is 10-20x
    slower there than oneDNN. Tracing (and so ONNX export) and GPU tensors take the usual path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _runs_on_onednn(x):
            return torch.mkldnn_convolution(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
            )
        return self._conv_forward(x, self.weight, self.bias)


class _DepthwiseConvolution(torch.autograd.Function):
    """A stride-1 "same" depthwise convolution on oneDNN whose input gradient is a forward convolution."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: list[int]):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return torch.mkldnn_convolution(x, weight, bias, padding, [1, 1, 1], [1, 1, 1], x.shape[1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:  # the transposed convolution: the same one with the kernel mirrored
            mirrored = weight.flip(2, 3, 4).contiguous(memory_format=torch.channels_last_3d)
            grad_x = torch.mkldnn_convolution(grad, mirrored, None, ctx.padding, [1, 1, 1], [1, 1, 1], x.shape[1])
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad,
                x,
                weight,
                [weight.shape[0]] if ctx.has_bias else None,
                [1, 1, 1],
                ctx.padding,
                [1, 1, 1],
                False,
                [0, 0, 0],
                x.shape[1],
                [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]],
            )
        return grad_x, grad_weight, grad_bias, None


class DepthwiseConv3d(OneDNNConv3d):
    """
    A depthwise ``nn.Conv3d`` (one filter per channel) with stride 1 and "same" padding, on oneDNN, whose input
    gradient is computed as a forward convolution with the mirrored kernel (the transposed convolution of a stride-1
    convolution). oneDNN's own depthwise backward takes 5-8x the time of its forward for that gradient: a 5x5x5
    convolution of 8 channels at 2 x 24 x 32 x 24, channels-last, 5.1 against 0.6 ms (2 threads). The weight
    gradient stays oneDNN's.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _runs_on_onednn(x) or not torch.is_grad_enabled():
            return super().forward(x)
        return _DepthwiseConvolution.apply(x, self.weight, self.bias, list(self.padding))

    @staticmethod
    def applies_to(module: nn.Conv3d) -> bool:
        """Whether ``module`` is a depthwise convolution this class computes: stride 1, odd kernel, same padding."""
        depthwise = module.groups == module.in_channels == module.out_channels
        same = all(k % 2 == 1 and p == k // 2 for k, p in zip(module.kernel_size, module.padding, strict=True))
        return depthwise and same and module.stride == (1, 1, 1) and module.dilation == (1, 1, 1)


class SingleOutputConv3d(OneDNNConv3d):
    """
    A dense ``nn.Conv3d`` with one output channel, computed without gradients (inference) as a depthwise convolution
    followed by a sum over the channels: the same sum of products in another order. oneDNN computes output channels
    in blocks of 16, so one output channel costs as much as sixteen: LightMedSeg's 16 -> 1 3x3x3 gating convolution
    at 1 x 16 x 64^3 took 16.5 ms, as a depthwise convolution and a sum 2.8 ms (2 threads). With gradients it keeps
    oneDNN's convolution, whose backward is faster than that of the depthwise form (its weight gradient).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _runs_on_onednn(x) or torch.is_grad_enabled():
            return super().forward(x)
        depthwise = self.weight.transpose(0, 1)  # (C_in, 1, *kernel): one filter per input channel
        per_channel = torch.mkldnn_convolution(
            x, depthwise, None, self.padding, self.stride, self.dilation, self.in_channels
        )  # (B, C_in, D', H', W')
        out = per_channel.sum(1, keepdim=True)  # (B, 1, D', H', W')
        return out if self.bias is None else out.add_(self.bias.view(1, 1, 1, 1, 1))

    @staticmethod
    def applies_to(module: nn.Conv3d) -> bool:
        """Whether ``module`` is a dense convolution of several input channels to one output channel."""
        return module.out_channels == 1 and module.groups == 1 and module.in_channels > 1


class PointwiseConv3d(nn.Conv3d):
    """
    A 1x1x1 ``nn.Conv3d`` computed as one matrix product over the voxels: ``W @ x`` for a channels-first tensor,
    ``x @ W^T`` (``F.linear`` over the last axis) for a channels-last one, so that neither layout is copied. For the
    bundle's widths (1-256 channels) this beat oneDNN's 1x1x1 convolution end to end on the shipped LightMedSeg:
    28 against 40 ms per hippocampus case, 185 against 193 ms per training step (2 threads).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _runs_on_onednn(x):
            return self._conv_forward(x, self.weight, self.bias)
        if x.is_contiguous():
            b, _, d, h, w = x.shape
            out = torch.matmul(self.weight.flatten(1), x.reshape(b, self.in_channels, d * h * w))  # (B, C_out, DHW)
            if self.bias is not None:
                out = out + self.bias[:, None]
            return out.view(b, self.out_channels, d, h, w)
        return F.linear(x.movedim(1, -1), self.weight.flatten(1), self.bias).movedim(-1, 1)  # channels-last


class PatchExpandConv3d(nn.ConvTranspose3d):
    """
    A 2x2x2 stride-2 ``nn.ConvTranspose3d`` without padding: every input voxel expands independently to a 2x2x2
    output patch, so the whole layer is one ``(C_in) -> (C_out * 8)`` matrix product over the voxels followed by a
    reshuffle of the patches into place (a depth-to-space step), in the input's memory layout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _runs_on_onednn(x):
            return super().forward(x)
        b, _, d, h, w = x.shape
        c = self.out_channels
        bias = None if self.bias is None else self.bias.repeat_interleave(8)  # weight.flatten(1): (C_in, C_out * 8)
        patches = F.linear(x.movedim(1, -1), self.weight.flatten(1).t(), bias)  # (B, D, H, W, C_out * 8)
        patches = patches.view(b, d, h, w, c, 2, 2, 2)
        if x.is_contiguous():
            return patches.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, c, 2 * d, 2 * h, 2 * w)
        out = patches.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, 2 * d, 2 * h, 2 * w, c)  # channels-last
        return out.movedim(-1, 1)


def _upsample2x_axis(x: torch.Tensor, axis: int) -> torch.Tensor:
    """
    ``x`` twice as long along ``axis`` by the 1D linear interpolation of ``align_corners=False``. Along an axis of
    length n, output 2i is ``0.25 x[i-1] + 0.75 x[i]`` and output 2i+1 is ``0.75 x[i] + 0.25 x[i+1]``, the border
    voxels copied where the neighbour would fall outside (PyTorch clamps the source coordinate there); each half is
    one ``torch.lerp`` written in place into the interleaved output.
    """
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = 2 * n
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    pairs = out.unflatten(axis, (n, 2))
    even, odd = pairs.select(axis + 1, 0), pairs.select(axis + 1, 1)
    low, high = x.narrow(axis, 0, n - 1), x.narrow(axis, 1, n - 1)
    torch.lerp(low, high, 0.75, out=even.narrow(axis, 1, n - 1))
    torch.lerp(high, low, 0.75, out=odd.narrow(axis, 0, n - 1))
    even.narrow(axis, 0, 1).copy_(x.narrow(axis, 0, 1))
    odd.narrow(axis, n - 1, 1).copy_(x.narrow(axis, n - 1, 1))
    return out


def _upsample2x_trilinear(x: torch.Tensor) -> torch.Tensor:
    """
    ``F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)`` of a 5D tensor, one axis at a time,
    returned channels-first whatever ``x``'s layout. Each axis in its own call, so that its views of the step before
    die with it: at most two of the steps' results are alive at once (1 x 3 x 64^3: 36 MiB rather than 42). The
    innermost axis first, while the volume is smallest: its interleaved writes are the only ones at stride 2 in
    memory (1 x 3 x 64^3: 3.0 ms against 4.0 ms with the outermost axis first; 3 x 24 x 32 x 24: 0.16 against 0.32).
    """
    for axis in (4, 3, 2):
        x = _upsample2x_axis(x, axis)
    return x


class TrilinearUpsample(nn.Upsample):
    """
    An ``nn.Upsample`` (3D, trilinear) that is faster on the CPU in both memory layouts:

    - without gradients (inference), the 2x upsampling of ``align_corners=False`` (LightMedSeg's head) runs as three
      1D steps of two ``torch.lerp`` each and returns channels-first, the layout the network's output leaves in
      anyway: 1 x 3 x 64^3 channels-last in 3-6 ms against PyTorch's 29 (15 channels-first, plus the conversions),
      LightMedSeg's forward at 1 x 4 x 128^3 224 -> 155 ms (2 threads); equal to 5e-7;
    - otherwise, a channels-last input of fewer than 8 channels is interpolated channels-first and returned
      channels-last: PyTorch's channels-last trilinear kernel runs about 2x slower than the channels-first one for
      2-4 channels (a network's logits), and faster from 8 channels on.
    """

    max_channels = 7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _runs_on_onednn(x) or x.dim() != 5 or self.mode != "trilinear":
            return super().forward(x)
        doubling = self.size is None and self.scale_factor in (2, 2.0, (2, 2, 2), (2.0, 2.0, 2.0))
        if doubling and not self.align_corners and min(x.shape[2:]) > 1:
            if not (torch.is_grad_enabled() and x.requires_grad):
                return _upsample2x_trilinear(x)
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
        if channels_last and x.shape[1] <= self.max_channels:
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last_3d)
        return super().forward(x)
