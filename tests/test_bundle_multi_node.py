"""Multi-node training on CPU: two ``torchrun`` launchers (two "nodes" on 127.0.0.1, one process each, gloo) meet
at one c10d rendezvous endpoint and run ``train.json`` + ``multi_gpu_train.json``, as two machines would.

Each launcher gets its own ``--bundle_root`` here, so that what each rank writes can be told apart (on real nodes the
run folder is shared, see the restart test): rank 0's holds the checkpoints and TensorBoard events, the other rank's
nothing. A small test overlay prints the cases of every batch, to check that the ranks' shards are disjoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, FAST_TRAIN_ARGS, bundle_env, hippocampus_cases, needs_hippocampus, write_datalist
from monai.bundle import ConfigParser

pytestmark = [pytest.mark.slow, needs_hippocampus]

#: test overlay: one line per batch, "CASES rank <R>: <file> <file>"
SHARD_OVERLAY = {
    "+initialize": [
        "$@train#trainer.add_event_handler(ignite.engine.Events.ITERATION_STARTED, lambda e: print('CASES rank', "
        "dist.get_rank(), ':', *map(os.path.basename, e.state.batch['image'].meta['filename_or_obj']), flush=True))"
    ]
}
#: test overlay: rank 1 dies (exit 1) once its third iteration is done, the first time only (a marker file in the
#: shared run folder: TORCHELASTIC_RESTART_COUNT is counted per node, the other node's restart keeps 0); by then
#: rank 0 has passed the gradient all-reduce of that iteration, so it has saved the checkpoint of epoch 2
CRASH_OVERLAY = {
    "+initialize": [
        "$@train#trainer.add_event_handler(ignite.engine.Events.ITERATION_COMPLETED(once=3), lambda e: os._exit(1)) "
        "if dist.get_rank() == 1 and not os.path.exists(@bundle_root + '/crashed') "
        "and not open(@bundle_root + '/crashed', 'w').close() else None"
    ]
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_nodes(
    node_args: list[list], cwd: Path, torchrun_args: tuple = (), env_update: dict | None = None, timeout: float = 600
) -> list[str]:
    """Start one torchrun launcher per item of ``node_args`` (its ``monai.bundle run`` arguments), all at once,
    each a node of one process at a shared c10d endpoint; returns each launcher's output once all have ended."""
    endpoint = f"127.0.0.1:{_free_port()}"
    env = bundle_env()
    env.update(OMP_NUM_THREADS="1", **(env_update or {}))  # 2 processes on 2 cores
    procs, logs = [], []
    for node, args in enumerate(node_args):
        cmd = [
            sys.executable, "-m", "torch.distributed.run", f"--nnodes={len(node_args)}", "--nproc_per_node=1",
            "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}", "--rdzv_id=lightmedseg-test", "--local_addr=127.0.0.1",
            *torchrun_args, "-m", "monai.bundle", "run", *[str(a) for a in args],
        ]  # fmt: skip
        logs.append(cwd / f"node{node}.log")
        with open(logs[-1], "w") as log:
            procs.append(
                subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
    try:
        codes = [proc.wait(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:  # the launcher and its workers: the session it leads
                os.killpg(proc.pid, signal.SIGKILL)
    outputs = [log.read_text() for log in logs]
    for node, (code, output) in enumerate(zip(codes, outputs, strict=True)):
        assert code == 0, f"node {node}: exit {code}\n{output[-6000:]}"
    return outputs


def _rank(output: str) -> int:
    ranks = set(re.findall(r"rank (\d)/2: epoch", output))
    assert len(ranks) == 1, ranks
    return int(ranks.pop())


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory) -> dict:
    """One epoch of training on two nodes of one process each; 4 training cases, 2 per rank (one batch)."""
    tmp = tmp_path_factory.mktemp("two_nodes")
    datalist = write_datalist(tmp / "dataset.json", hippocampus_cases(4), validation=hippocampus_cases(2, 4))
    overlay = tmp / "print_cases.json"
    overlay.write_text(json.dumps(SHARD_OVERLAY))
    configs = (
        "[" + ",".join(repr(str(p)) for p in (CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json", overlay)) + "]"
    )
    roots = [tmp / "node0", tmp / "node1"]
    outputs = _run_nodes(
        [["training", "--config_file", configs, "--bundle_root", root, "--datalist_file", datalist, *FAST_TRAIN_ARGS]
         for root in roots],
        cwd=tmp,
    )  # fmt: skip
    by_rank = {_rank(output): (output, root) for output, root in zip(outputs, roots, strict=True)}
    assert set(by_rank) == {0, 1}
    return {"tmp": tmp, "datalist": datalist, "by_rank": by_rank}


def test_two_nodes_train_on_disjoint_shards(two_nodes):
    cases = {}
    for rank, (output, _) in two_nodes["by_rank"].items():
        assert re.search(rf"rank {rank}/2: epoch 1/1 done, 1 iterations", output), output[-3000:]
        batches = re.findall(rf"CASES rank {rank} : (.+)", output)
        assert len(batches) == 1, output[-3000:]
        cases[rank] = batches[0].split()
    assert len(cases[0]) == len(cases[1]) == 2  # batch_size 2, num_samples 1
    assert not set(cases[0]) & set(cases[1]), cases
    assert set(cases[0]) | set(cases[1]) == {Path(c["image"]).name for c in hippocampus_cases(4)}


def test_only_rank_0_writes_checkpoints_and_logs(two_nodes):
    (output0, root0), (output1, root1) = two_nodes["by_rank"][0], two_nodes["by_rank"][1]
    run_dir = root0 / "runs" / "training"
    assert (run_dir / "models" / "model.pt").is_file()
    assert (run_dir / "models" / "checkpoint_epoch=1.pt").is_file()
    assert list((run_dir / "eval").glob("events.out.tfevents.*"))
    assert not root1.exists() or not [p for p in root1.rglob("*") if p.is_file()], list(root1.rglob("*"))
    # StatsHandler's line and the closing summary on rank 0 only
    assert len(re.findall(r"Epoch: 1/1, Iter: 1/1 -- train_loss", output0)) == 1
    assert "train_loss" not in output1 and "training finished" not in output1


def test_two_node_model_loads_into_the_training_network(two_nodes):
    model = two_nodes["by_rank"][0][1] / "runs" / "training" / "models" / "model.pt"
    state = torch.load(model, map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in state)  # saved unwrapped from DDP
    network = ConfigParser(ConfigParser.load_config_file(CONFIGS / "train.json")).get_parsed_content("network_def")
    network.load_state_dict(state, strict=True)


def test_a_restarted_node_resumes_from_the_last_checkpoint(two_nodes, tmp_path):
    """``--max-restarts 1 --resume true`` on a shared run folder: rank 1 dies in epoch 3 (first attempt only),
    torchrun restarts the workers of both nodes, and both resume from the checkpoint of epoch 2.

    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``: with the c10d rendezvous's TCP store shared with the workers (torch's
    default), a restarted worker may read the process-group addresses of the previous attempt from it and fail
    ("Gloo connectFullMesh failed ... Connection refused"; pytorch/pytorch#135712, #167288); it did here."""
    shared = tmp_path / "shared_run"
    shutil.copytree(two_nodes["by_rank"][0][1], shared)  # the run folder of the one-epoch training, on "NFS"
    crash = tmp_path / "crash.json"
    crash.write_text(json.dumps(CRASH_OVERLAY))
    configs = (
        "[" + ",".join(repr(str(p)) for p in (CONFIGS / "train.json", CONFIGS / "multi_gpu_train.json", crash)) + "]"
    )
    args = ["training", "--config_file", configs, "--bundle_root", shared, "--datalist_file", two_nodes["datalist"],
            *FAST_TRAIN_ARGS, "--epochs", "4", "--resume", "true"]  # fmt: skip
    outputs = _run_nodes(
        [args, args], cwd=tmp_path, torchrun_args=("--max-restarts=1",),
        env_update={"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"},
    )  # fmt: skip
    models = shared / "runs" / "training" / "models"
    both = "\n".join(outputs)
    # first attempt: resumed from epoch 1, ran epochs 2 and 3 (killed in 3); the restart: resumed from epoch 2
    assert re.search(r"resuming training from .*checkpoint_epoch=1\.pt", both), both[-4000:]
    assert re.search(r"resuming training from .*checkpoint_epoch=2\.pt", both), both[-4000:]
    assert (shared / "crashed").is_file()
    for rank in (0, 1):
        assert re.search(rf"rank {rank}/2: epoch 4/4 done", both), both[-4000:]
    state = torch.load(models / "checkpoint_epoch=4.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["iteration"] == 4 and state["trainer"]["max_epochs"] == 4  # 1 iteration per epoch
