from __future__ import annotations

import torch
from torch import nn

__all__ = ["LowRankLinear"]


class LowRankLinear(nn.Module):
    """
    A linear map factorised through a rank-``r`` bottleneck, ``y = B (A x) + b`` with bias-free ``A`` (r x in) and
    ``B`` (out x r): the "low-rank projection" of RefineFormer3D's MixFFN3D. It holds ``r (in + out) + out``
    parameters instead of ``in * out + out``.

    Args:
        in_features: size of the last input dimension.
        out_features: size of the last output dimension.
        rank: bottleneck rank ``r``.
    """

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"`rank` must be positive, got {rank}.")
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))  # (..., in) -> (..., r) -> (..., out)
