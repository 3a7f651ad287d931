"""A training process killed while it writes a checkpoint leaves complete files behind (``AtomicCheckpointSaver``).

The kill is made deterministic: a child process runs a real ignite engine with the two savers ``train.json`` uses
(every epoch with the trainer state, best ``model.pt`` by a key metric), and its ``torch.save`` writes half a file
and calls ``os._exit`` on the N-th save, as a SIGKILL in the middle of a write would leave things.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from lightmedseg_bundle.bundle import latest_checkpoint
from lightmedseg_bundle.handlers import AtomicCheckpointSaver

CHILD = textwrap.dedent("""
    import os, sys
    import torch
    from ignite.engine import Engine
    from lightmedseg_bundle.handlers import AtomicCheckpointSaver, TrainerCheckpointSaver

    save_dir, die_at_save = sys.argv[1], int(sys.argv[2])
    net = torch.nn.Linear(2, 2)
    saves, real_save = [], torch.save

    def save(obj, file, *args, **kwargs):
        saves.append(1)
        if len(saves) == die_at_save:
            out = file if hasattr(file, "write") else open(file, "wb")
            out.write(b"PK" * 64)  # the start of a zip archive, then the process is gone
            out.flush()
            os._exit(9)
        real_save(obj, file, *args, **kwargs)

    torch.save = save

    def step(engine, batch):
        with torch.no_grad():
            net.weight.fill_(float(engine.state.epoch))
        engine.state.metrics["score"] = float(engine.state.epoch)

    engine = Engine(step)
    TrainerCheckpointSaver(save_dir, {"model": net}, save_interval=1, n_saved=1, epoch_level=True).attach(engine)
    AtomicCheckpointSaver(
        save_dir, {"model": net}, save_key_metric=True, key_metric_name="score", key_metric_filename="model.pt"
    ).attach(engine)
    engine.run([0], max_epochs=3)
    """)


def _run_child(save_dir, die_at_save: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(save_dir), str(die_at_save)], capture_output=True, text=True, check=False
    )


def _weight(path) -> float:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return float(state.get("model", state)["weight"][0, 0])


def test_both_savers_write_each_epoch(tmp_path):
    proc = _run_child(tmp_path, die_at_save=0)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=3.pt", "model.pt"]
    assert _weight(tmp_path / "checkpoint_epoch=3.pt") == 3.0 and _weight(tmp_path / "model.pt") == 3.0
    assert (tmp_path / "model.pt").stat().st_mode & 0o044 == 0o044  # readable by group and others, as torch.save


@pytest.mark.parametrize(
    "die_at_save, latest_epoch, best_epoch",
    [(3, 1, 1), (4, 2, 1)],
    ids=["while-saving-epoch-checkpoint", "while-saving-model.pt"],
)
def test_killed_while_saving_keeps_the_previous_complete_files(tmp_path, die_at_save, latest_epoch, best_epoch):
    # saves per epoch: checkpoint_epoch=N.pt, then model.pt; the 3rd and 4th saves belong to epoch 2
    proc = _run_child(tmp_path, die_at_save)
    assert proc.returncode == 9, proc.stderr

    latest = latest_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / f"checkpoint_epoch={latest_epoch}.pt")
    assert _weight(latest) == latest_epoch  # what --resume true would load
    assert _weight(tmp_path / "model.pt") == best_epoch
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1  # the half-written temporary file, under a name nothing loads

    AtomicCheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(2, 2)}, save_interval=1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "the next run cleans up"
