"""Multi-GPU configs run on CPU: torchrun with 2 processes and the gloo backend."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import (
    CONFIGS,
    FAST_TRAIN_ARGS,
    FAST_TRAIN_OVERRIDES,
    REPO_ROOT,
    bundle_env,
    config_arg,
    hippocampus_cases,
    needs_hippocampus,
    write_datalist,
)

pytestmark = [pytest.mark.slow, needs_hippocampus]


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
    state = torch.load(
        bundle_root / "runs" / "training" / "models" / "checkpoint_epoch=1.pt", map_location="cpu", weights_only=True
    )
    assert state["trainer"]["iteration"] == 1
    assert not any(k.startswith("module.") for k in state["model"])  # saved unwrapped from DDP
    assert (bundle_root / "runs" / "training" / "models" / "model.pt").is_file()

    output_dir = tmp_path / "eval"
    proc = _torchrun(
        "evaluating",
        "--config_file", config_arg("train.json", "evaluate.json", "multi_gpu_evaluate.json"),
        "--dist_backend", "gloo",
        "--bundle_root", bundle_root,
        "--ckpt_dir", bundle_root / "runs" / "training" / "models",
        "--output_dir", output_dir,
        "--datalist_file", datalist,
        "--num_workers", "0",
        cwd=tmp_path,
    )  # fmt: skip
    lines = (output_dir / "val_mean_dice_raw.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 2  # header + both validation cases, gathered from the two ranks
    assert (output_dir / "per_case_metrics.csv").is_file()


# One rank of a multi-GPU workflow (world size 1): which worker threads of the default gloo process group are still
# running after `finalize`? Prints "WORKERS <started by init_process_group> LEFT <of those, alive after finalize>".
_FINALIZE_SCRIPT = """
import json, os, sys
import torch.distributed as dist
from monai.bundle import ConfigWorkflow

threads = lambda: set(os.listdir("/proc/self/task"))
name = lambda tid: open(f"/proc/self/task/{tid}/comm").read().strip()
before = threads()
# the overlay's `initialize` keeps a group that already exists
dist.init_process_group(backend="gloo", init_method="file://" + os.path.abspath("store"), rank=0, world_size=1)
started = threads() - before
workflow = ConfigWorkflow(config_file=json.loads(sys.argv[1]), workflow_type=None, logging_file=False,
                          **json.loads(sys.argv[2]))
workflow.initialize()
workers = {tid for tid in started if name(tid) == "pt_gloo_runloop"}  # not the store's or the socket loop's
workflow.run()
workflow.finalize()
print("WORKERS", len(workers), "LEFT", len(workers & threads()))
"""


@pytest.mark.parametrize(
    "configs, overrides",
    [
        (["train.json", "multi_gpu_train.json"], FAST_TRAIN_OVERRIDES),
        (["train.json", "evaluate.json", "multi_gpu_evaluate.json"], {"ckpt_path": str(REPO_ROOT / "models/model.pt")}),
    ],
    ids=["training", "evaluating"],
)  # fmt: skip
def test_finalize_joins_the_default_process_groups_threads(tmp_path, configs, overrides):
    """Every worker thread of the default (gloo) process group is joined by ``finalize``, before the interpreter exits.

    The metric all-gathers run on that group; a worker thread that outlives ``finalize`` may still be freeing their
    tensors and wait for the GIL, and if the interpreter is finalizing by then the rank aborts ("terminate called
    without an active exception", SIGABRT: about 1 run in 10 of a 2-rank ``run evaluating`` or ``run training``).
    ``destroy_process_group`` joins the threads only if nothing else holds the group: so DDP gets a group of its
    own in ``multi_gpu_train.json``, and evaluation, which needs no gradient sync, is not wrapped in DDP.
    """
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(2), validation=hippocampus_cases(2, 2))
    overrides = {
        **overrides, "dist_backend": "gloo", "bundle_root": str(tmp_path / "bundle"),
        "output_dir": str(tmp_path / "eval"), "datalist_file": str(datalist), "num_workers": 0,
    }  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _FINALIZE_SCRIPT, json.dumps([str(CONFIGS / c) for c in configs]), json.dumps(overrides)],
        cwd=tmp_path, env=bundle_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    workers, left = map(int, re.search(r"WORKERS (\d+) LEFT (\d+)", proc.stdout).groups())
    assert workers > 0, "found no gloo worker thread of the default group: the test measures nothing"
    assert left == 0, f"{left} of the default process group's {workers} worker threads still run after finalize"
