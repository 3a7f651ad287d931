from __future__ import annotations

import torch
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from torch import nn

__all__ = ["GlobalAnchorDetector"]


class GlobalAnchorDetector(nn.Module):
    """
    Global Anchor Detector of LightMedSeg (Sec. 3.2, Eq. 1): predicts ``K`` sample-specific anchor coordinates in
    ``[0, 1]^3`` (normalised depth, height, width) from the raw input volume, without spatial supervision.

    ``S = sigmoid(MLP(GAP3D(phi(X))))`` where ``phi`` is three (Conv3d k3 s2 p1, GN, SiLU) layers and the MLP has one
    hidden layer. With ``channels=8`` and ``hidden_size=128`` it has the paper's 8.6K parameters at 4 input channels.

    Args:
        in_channels: number of input channels (imaging modalities).
        num_anchors: number of anchors ``K``. Defaults to 8.
        channels: width of the three convolutions of ``phi``. Defaults to 8.
        hidden_size: hidden width of the MLP. Defaults to 128.
        norm: normalisation type and arguments. Defaults to group norm with 4 groups.
        act: activation type and arguments. Defaults to SiLU.
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int = 8,
        channels: int = 8,
        hidden_size: int = 128,
        norm: tuple | str = ("group", {"num_groups": 4}),
        act: tuple | str = "swish",
    ):
        super().__init__()
        self.num_anchors = num_anchors
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv3d(in_channels if i == 0 else channels, channels, 3, stride=2, padding=1),
                get_norm_layer(norm, spatial_dims=3, channels=channels),
                get_act_layer(act),
            ]
        self.encoder = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden_size), get_act_layer(act), nn.Linear(hidden_size, 3 * num_anchors)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the anchors ``S``, shape (B, K, 3), each row a (d, h, w) coordinate in [0, 1]."""
        descriptor = self.pool(self.encoder(x)).flatten(1)  # (B, channels)
        return torch.sigmoid(self.mlp(descriptor)).view(-1, self.num_anchors, 3)
