"""Names of the predicted labels, read from the bundle's ``metadata.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["label_names"]


def label_names(meta: Mapping[str, Any] | None, out_channels: int, activation: str = "softmax") -> list[str]:
    """
    The names of the foreground outputs, from ``network_data_format.outputs.pred.channel_def`` of the bundle's
    metadata (``@_meta_`` in a config):

    - ``"softmax"`` (exclusive labels): the names of channels ``1..out_channels-1``, i.e. of labels 1, 2, ...
    - ``"sigmoid"`` (overlapping regions): the names of channels ``0..out_channels-1``.

    A channel the metadata does not name is named ``label_<i>`` (softmax) or ``region_<c>`` (sigmoid), and so are
    all when the metadata describes other outputs (a task overlay without its own metadata: another number of
    channels, or a ``background`` channel 0 for a sigmoid model); override ``label_names`` in the config then.
    """
    pred = ((meta or {}).get("network_data_format") or {}).get("outputs", {}).get("pred", {})
    channel_def = {str(k): str(v) for k, v in (pred.get("channel_def") or {}).items()}
    if int(pred.get("num_channels", out_channels)) != int(out_channels):
        channel_def = {}
    if activation != "softmax" and channel_def.get("0", "").lower() == "background":
        channel_def = {}  # exclusive labels described, overlapping regions predicted
    if activation == "softmax":
        return [channel_def.get(str(i), f"label_{i}") for i in range(1, int(out_channels))]
    return [channel_def.get(str(c), f"region_{c}") for c in range(int(out_channels))]
