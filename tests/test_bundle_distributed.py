"""Multi-GPU configs run on CPU: torchrun with 2 processes and the gloo backend."""

from __future__ import annotations

import re
import subprocess
import sys

import torch

from conftest import FAST_TRAIN_ARGS, bundle_env, config_arg, hippocampus_cases, needs_hippocampus, write_datalist

pytestmark = needs_hippocampus


def _torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "torch.distributed.run",
        "--nproc_per_node=2", "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=127.0.0.1:0",
        "-m", "monai.bundle", "run", *[str(a) for a in args],
    ]  # fmt: skip
    env = bundle_env()
    env["OMP_NUM_THREADS"] = "1"  # 2 processes on 2 cores
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_multi_gpu_train_and_evaluate_on_cpu_with_gloo(tmp_path):
    # 4 training cases: each rank's DistributedSampler shard holds 2, one iteration of batch 2
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(4), validation=hippocampus_cases(2, 4))
    bundle_root = tmp_path / "bundle"
    proc = _torchrun(
        "training",
        "--config_file", config_arg("train.json", "multi_gpu_train.json"),
        "--dist_backend", "gloo",
        "--bundle_root", bundle_root,
        "--datalist_file", datalist,
        *FAST_TRAIN_ARGS,
        cwd=tmp_path,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    for rank in (0, 1):
        assert re.search(rf"rank {rank}/2: epoch 1/1 done, 1 iterations", output), output[-3000:]
    # StatsHandler, checkpoints and TensorBoard on rank 0 only
    assert len(re.findall(r"Epoch: 1/1, Iter: 1/1 -- train_loss", output)) == 1
    state = torch.load(bundle_root / "models" / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 1
    assert not any(k.startswith("module.") for k in state["model"])  # saved unwrapped from DDP
    assert (bundle_root / "models" / "model.pt").is_file()

    output_dir = tmp_path / "eval"
    proc = _torchrun(
        "evaluating",
        "--config_file", config_arg("train.json", "evaluate.json", "multi_gpu_evaluate.json"),
        "--dist_backend", "gloo",
        "--bundle_root", bundle_root,
        "--output_dir", output_dir,
        "--datalist_file", datalist,
        "--num_workers", "0",
        cwd=tmp_path,
    )  # fmt: skip
    lines = (output_dir / "val_mean_dice_raw.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2  # header + both validation cases, gathered from the two ranks
    assert (output_dir / "per_case_metrics.csv").is_file()
