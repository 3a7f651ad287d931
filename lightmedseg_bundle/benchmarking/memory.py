"""Peak memory of a benchmark process: the kernel's peak RSS mark, and the tensor storage alive at once."""

from __future__ import annotations

import resource
import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["LiveTensorMemory", "peak_rss_bytes", "reset_peak_rss"]


def _proc_status_bytes(field: str) -> int | None:
    """Return a ``kB`` field of ``/proc/self/status`` (e.g. ``VmHWM``) in bytes, or None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; return whether that was possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Return the peak RSS of this process: ``VmHWM`` where ``/proc`` has it, otherwise ``ru_maxrss``."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max_rss if sys.platform == "darwin" else max_rss * 1024


class LiveTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage created under this mode and alive at once (``peak``).

    Every op's output storage is counted when it is created and uncounted when it is freed (a ``weakref.finalize``
    on the storage, whose Python object lives as long as the storage); views share their base's storage.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._counted: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._counted.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if not isinstance(item, torch.Tensor) or item.device.type == "meta":
                continue
            storage = item.untyped_storage()
            key = storage.data_ptr()
            if key in self._counted or storage.nbytes() == 0:
                continue
            self._counted.add(key)
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key, storage.nbytes())
        return out
