"""Shared helpers for the bundle end-to-end tests (``tests/test_bundle_*.py``).

The bundle tests run the real ``python -m monai.bundle run ...`` commands in subprocesses on a few real cases of
``../shared/data`` (resolved from this file, never copied into the project) and on small files they derive from
them in pytest's temporary folders. The expensive step, one short training, is a session fixture shared by the
evaluation, inference and resume tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HIPPOCAMPUS_DIR = SHARED_DATA / "msd_hippocampus"
BRATS_DIR = SHARED_DATA / "brats2015_deepmedic_2ch"

#: overrides that keep a hippocampus training run to a few seconds per epoch on 2 CPU cores
FAST_TRAIN_OVERRIDES = {
    "epochs": 1, "val_interval": 1, "num_workers": 0, "batch_size": 2, "num_samples": 1, "roi_size": [32, 32, 32],
}  # fmt: skip
#: the same, as ``monai.bundle run`` command-line arguments
FAST_TRAIN_ARGS = [arg for key, value in FAST_TRAIN_OVERRIDES.items() for arg in (f"--{key}", json.dumps(value))]

needs_hippocampus = pytest.mark.skipif(
    not (HIPPOCAMPUS_DIR / "dataset.json").is_file(), reason=f"real data not found at {HIPPOCAMPUS_DIR}"
)
needs_brats = pytest.mark.skipif(
    not (BRATS_DIR / "dataset.json").is_file(), reason=f"real data not found at {BRATS_DIR}"
)


def config_arg(*names: str) -> str:
    """``--config_file`` value for one or several configs, as absolute paths (a list literal when several)."""
    paths = [str(CONFIGS / n) for n in names]
    return paths[0] if len(paths) == 1 else "[" + ",".join(repr(p) for p in paths) + "]"


def bundle_env() -> dict[str, str]:
    """Environment of the bundle subprocesses: 2 threads, unbuffered output, this checkout importable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _tail(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


def run_bundle(
    *args: str, cwd: str | os.PathLike, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle run *args`` in ``cwd``; with ``check`` fail the test on a non-zero exit."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", *[str(a) for a in args]]
    proc = subprocess.run(cmd, cwd=cwd, env=bundle_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"--- stdout ---\n{_tail(proc.stdout)}\n--- stderr ---\n{_tail(proc.stderr)}"
        )
    return proc


def hippocampus_cases(n: int, start: int = 0) -> list[dict[str, str]]:
    """``n`` real hippocampus cases (absolute paths), in dataset.json order from ``start``."""
    listed = json.loads((HIPPOCAMPUS_DIR / "dataset.json").read_text())["training"]
    return [{k: str((HIPPOCAMPUS_DIR / v).resolve()) for k, v in case.items()} for case in listed[start : start + n]]


def write_datalist(
    path: Path, training: list[dict], validation: list[dict] | None = None, test: list | None = None
) -> Path:
    """Write a Decathlon-style dataset.json with absolute paths."""
    content: dict = {"name": "bundle-test", "training": training}
    if validation is not None:
        content["validation"] = validation
    if test is not None:
        content["test"] = test
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))
    return path


@pytest.fixture(scope="session")
def hippocampus_datalist(tmp_path_factory) -> Path:
    """A dataset.json listing 5 real hippocampus cases (the bundle splits them 4 training / 1 validation)."""
    if not (HIPPOCAMPUS_DIR / "dataset.json").is_file():
        pytest.skip(f"real data not found at {HIPPOCAMPUS_DIR}")
    return write_datalist(tmp_path_factory.mktemp("datalist") / "dataset.json", hippocampus_cases(5))


def tensorboard_scalars(folder: str | os.PathLike, newest_only: bool = False) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the TensorBoard event files a run's handlers wrote into ``folder`` (only the
    newest run's files with ``newest_only``): what a run did, read from its outputs rather than its log."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # events.out.tfevents.<time>.<host>.<pid>.<n>: a run's handlers share its pid
    files = sorted(Path(folder).glob("events.out.tfevents.*"), key=lambda f: int(f.name.split(".")[3]))
    if newest_only and files:
        files = [f for f in files if f.name.split(".")[-2] == files[-1].name.split(".")[-2]]
    scalars: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        events = EventAccumulator(str(file))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return scalars


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory, hippocampus_datalist) -> dict:
    """One epoch of training, run from outside the bundle root with absolute config paths and ``--bundle_root``."""
    workdir = tmp_path_factory.mktemp("train_cwd")
    bundle_root = tmp_path_factory.mktemp("trained_bundle")
    proc = run_bundle(
        "training",
        "--config_file", CONFIGS / "train.json",
        "--bundle_root", bundle_root,
        "--datalist_file", hippocampus_datalist,
        *FAST_TRAIN_ARGS,
        cwd=workdir,
    )  # fmt: skip
    return {
        "bundle_root": bundle_root,
        "ckpt_dir": bundle_root / "runs" / "training" / "models",
        "output_dir": bundle_root / "runs" / "training" / "eval",
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }
