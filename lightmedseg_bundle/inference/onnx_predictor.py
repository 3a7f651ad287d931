"""ONNX Runtime as a drop-in network for MONAI inferers (``configs/inference_onnx.json``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from torch import nn

__all__ = ["OnnxPredictor", "ONNX_EXPORT_COMMAND"]

#: the command that writes ``models/model.onnx`` from ``models/model.pt`` (run from the bundle root)
ONNX_EXPORT_COMMAND = (
    "python -m monai.bundle onnx_export --net_id network_def --filepath models/model.onnx "
    '--ckpt_file models/model.pt --config_file configs/inference.json --input_shape "[1,1,32,32,32]" '
    "--use_trace True --converter_kwargs \"{'dynamo': False, 'opset_version': 17, 'input_names': ['image'], "
    "'output_names': ['pred'], 'dynamic_axes': {'image': [0, 2, 3, 4], 'pred': [0, 2, 3, 4]}}\""
)


class OnnxPredictor(nn.Module):
    """
    An ONNX Runtime session that behaves like the network for MONAI's inferers and engines: it is called on a
    torch tensor (B, C, D, H, W) and returns the logits as a torch tensor on the input's device, so a
    ``SlidingWindowInferer`` (or ``FlipTTAInferer``) and a ``SupervisedEvaluator`` use it unchanged.

    The model must have dynamic batch and spatial axes, as written by the export command in
    :data:`ONNX_EXPORT_COMMAND`. It holds no parameters: ``eval()``/``train()`` and ``.to(device)`` change
    nothing, and the session always runs on the providers given here (the CPU by default).

    Args:
        path: the ``.onnx`` file.
        num_threads: ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
        providers: ONNX Runtime execution providers, in order of preference.
        size_divisible: every spatial size of the input must be a multiple of it (LightMedSeg: 16).

    Raises:
        FileNotFoundError: when ``path`` does not exist, with the command that exports it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int = 0,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        size_divisible: int = 16,
    ) -> None:
        super().__init__()
        import onnxruntime

        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"ONNX model not found: {path}. Export it once from the PyTorch checkpoint (from the bundle root):\n"
                f"    {ONNX_EXPORT_COMMAND}\n"
                "or point --onnx_path at an exported file."
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        self.path = str(path)
        self.size_divisible = int(size_divisible)
        self.session = onnxruntime.InferenceSession(self.path, options, providers=list(providers))
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x`` (B, C, D, H, W) from the ONNX session, float32, on ``x``'s device."""
        spatial = list(x.shape[2:])
        if x.dim() != 5 or any(s % self.size_divisible for s in spatial):
            raise ValueError(
                f"expected a 5D input with spatial sizes that are multiples of {self.size_divisible}, "
                f"got shape {list(x.shape)}"
            )
        tensor = x.as_tensor() if isinstance(x, MetaTensor) else x
        array = np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits).to(x.device)

    def extra_repr(self) -> str:
        return f"path={self.path!r}, providers={self.session.get_providers()}"
