"""The bundle's one opt-in speed pass for CPU inference and training: :func:`optimize_for_cpu`."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.blocks.activation import MemoryEfficientSwish, Swish
from torch import nn

from .kernels import (
    DepthwiseConv3d,
    OneDNNConv3d,
    PatchExpandConv3d,
    PointwiseConv3d,
    SingleOutputConv3d,
    TrilinearUpsample,
)

__all__ = ["optimize_for_cpu"]

_OPTIMIZED = "_lightmedseg_cpu_optimized"


def _fast_kernel(module: nn.Module) -> type[nn.Module] | None:
    """The kernel class that computes ``module`` faster on the CPU, or None where none applies."""
    if type(module) is nn.Conv3d and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        pointwise = module.kernel_size == (1, 1, 1) and module.stride == (1, 1, 1) and module.groups == 1
        if pointwise and module.padding == (0, 0, 0):
            return PointwiseConv3d
        if DepthwiseConv3d.applies_to(module):
            return DepthwiseConv3d
        return SingleOutputConv3d if SingleOutputConv3d.applies_to(module) else OneDNNConv3d
    if type(module) is nn.ConvTranspose3d:
        patch_expand = module.kernel_size == module.stride == (2, 2, 2) and module.groups == 1
        patch_expand &= module.padding == module.output_padding == (0, 0, 0) and module.dilation == (1, 1, 1)
        return PatchExpandConv3d if patch_expand else None
    if type(module) is nn.Upsample:
        return TrilinearUpsample
    return None


def _is_swish(module: nn.Module) -> bool:
    """MONAI's SiLU implementations (``x * sigmoid(x)`` in Python), which ``nn.SiLU`` computes in one kernel."""
    return isinstance(module, MemoryEfficientSwish) or (isinstance(module, Swish) and module.alpha == 1.0)


def _plain_channels_last(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """5D inputs as plain tensors (a MONAI ``MetaTensor`` sends every op of the network through Python's
    ``__torch_function__``) in the channels-last layout."""
    return tuple(
        (
            a.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last_3d)
            if isinstance(a, torch.Tensor) and a.dim() == 5
            else a
        )
        for a in args
    )


def _to_contiguous(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.contiguous()
    if isinstance(output, (tuple, list)):
        return type(output)(o.contiguous() if isinstance(o, torch.Tensor) else o for o in output)
    return output


def optimize_for_cpu(model: nn.Module, enabled: bool = True) -> nn.Module:
    """
    Make ``model`` (any ``nn.Module``: the bundle's networks, MONAI's UNet or SegResNet) faster on the CPU without
    changing what it computes, in place, and return it. Parameters and state-dict keys stay as they are, so
    checkpoints load and save as before, and outputs agree with the plain model to float rounding (tested to 1e-5).

    - Convolutions: dense 3D convolutions always on oneDNN (:class:`~.kernels.OneDNNConv3d`), stride-1 depthwise
      ones with their input gradient as a forward convolution (:class:`~.kernels.DepthwiseConv3d`), those of one
      output channel as a depthwise convolution and a channel sum at inference (:class:`~.kernels.SingleOutputConv3d`),
      1x1x1 convolutions and 2x2x2 stride-2 transposed convolutions as single matrix products
      (:class:`~.kernels.PointwiseConv3d`, :class:`~.kernels.PatchExpandConv3d`); trilinear ``nn.Upsample`` by 2 as
      separable in-place interpolation without gradients, and of fewer than 8 channels channels-first otherwise
      (:class:`~.kernels.TrilinearUpsample`).
    - Activations: MONAI's ``Swish``/``MemoryEfficientSwish`` become PyTorch's fused ``nn.SiLU``.
    - Memory layout: weights and the 5D inputs in ``torch.channels_last_3d`` (oneDNN's native layout, whose
      convolution backward passes are several times faster for few channels), outputs returned contiguous.
    - Inputs: a MONAI ``MetaTensor`` enters as a plain tensor, so the network's ops skip MetaTensor's Python
      ``__torch_function__`` (~15 % of a training step); outputs are plain tensors (MONAI's inferers put the input's
      metadata back on what they return).

    Every kernel falls back to PyTorch's own path for non-float32 or non-CPU tensors and while tracing (ONNX export),
    so a model optimised here still runs on a GPU. Applying the pass twice does nothing more.

    Args:
        model: the network to optimise.
        enabled: apply the pass; False returns ``model`` unchanged (the ``cpu_kernels`` switch of the configs).
    """
    if not enabled or getattr(model, _OPTIMIZED, False):
        return model
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if _is_swish(child):
                setattr(parent, name, nn.SiLU())
            elif (kernel := _fast_kernel(child)) is not None:
                child.__class__ = kernel
    model.to(memory_format=torch.channels_last_3d)
    model.register_forward_pre_hook(_plain_channels_last)
    model.register_forward_hook(_to_contiguous)
    setattr(model, _OPTIMIZED, True)
    return model
