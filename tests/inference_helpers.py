"""Shared helpers of the inference feature tests (``tests/test_inference_*.py``).

The bundle commands run in subprocesses with one OpenMP thread: these tests run many short sliding-window
passes, which on a busy machine are many times slower with two threads (OpenMP barriers).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from conftest import CONFIGS, bundle_env
from monai.bundle import ConfigParser

__all__ = ["run_bundle_command", "save_fresh_checkpoint", "inference_network", "dice"]


def run_bundle_command(*args, cwd: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle *args`` (e.g. ``run inference ...`` or ``onnx_export ...``); fail on error."""
    cmd = [sys.executable, "-m", "monai.bundle", *[str(a) for a in args]]
    env = bundle_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def inference_network(**override) -> torch.nn.Module:
    """The network of ``configs/inference.json`` (``network_def``), freshly initialised."""
    parser = ConfigParser(ConfigParser.load_config_file(CONFIGS / "inference.json"))
    for key, value in override.items():
        parser[f"network_def#{key}"] = value
    return parser.get_parsed_content("network_def")


def save_fresh_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save the state dict of a freshly initialised inference network (fixed seed) to ``path``."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(inference_network().state_dict(), path)
    return path


def dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    """Dice of label ``label`` between two label maps (1.0 when both lack it)."""
    a, b = a == label, b == label
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total
