from __future__ import annotations

import torch
from torch import nn

__all__ = ["OneDNNConv3d"]


class OneDNNConv3d(nn.Conv3d):
    """
    An ``nn.Conv3d`` that always runs on oneDNN for float32 CPU tensors.

    PyTorch sends a dense 3D convolution of a single volume to its im2col fallback when ``B * C * D * H`` is at most
    20480, which holds for LightMedSeg's encoder and decoder convolutions at 1/4 of a 128^3 input and below; the
    fallback is 10-20x slower there than oneDNN. Tracing (and so ONNX export) and GPU tensors take the usual path.
    Parameters and state dict are those of ``nn.Conv3d``; constructor arguments are passed through to it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.jit.is_tracing():
            return torch.mkldnn_convolution(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
            )
        return self._conv_forward(x, self.weight, self.bias)

