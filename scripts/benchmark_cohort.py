"""
Cohort inference throughput: cases per minute of ``configs/inference.json`` on the first ``--num-cases`` MSD
hippocampus cases, in one process and sharded over several (``configs/multi_gpu_inference.json`` under ``torchrun``).

Each setting ``PxT`` of ``--runs`` (default ``1x1,2x1,1x2``: P processes of T threads each, ``OMP_NUM_THREADS``)
runs the real command, ``python -m monai.bundle run inference`` (or ``torchrun --nproc_per_node P -m monai.bundle
run inference`` with the overlay for P > 1), with the weights ``--ckpt`` (default ``models/model.pt``) into a fresh
temporary output folder, ``--repeats`` times (the settings in turn). ``1x1`` against ``2x1`` is the gain of a second
process on a second core; ``1x2`` is a single process given the same two cores as threads. The command has to write
every case's label map exactly once, which is checked.

Two figures per run:

- evaluation: the cases over the span from the first rank's engine start to the last rank's engine end (timestamps
  printed by a small overlay the script adds), i.e. loading, preprocessing, sliding window, inversion and saving of
  every case; start-up (imports, process group, model loading) left out;
- command: the cases over the wall time of the whole command, start-up included (what a user waits for).

The result is the section between ``<!-- cohort:start -->`` and ``<!-- cohort:end -->`` of ``--output`` (default
``docs/benchmarks.md``): replaced if present, appended otherwise; the rest of the file is kept.

Usage::

    python scripts/benchmark_cohort.py --num-cases 20
    python scripts/benchmark_cohort.py --num-cases 5 --runs 1x1,2x1 --output /tmp/bench.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightmedseg_bundle.benchmarking import machine_info, section_markers, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
START, END = section_markers("cohort")
#: an overlay that prints each rank's engine start and end (wall clock), for the evaluation span
TIMING_OVERLAY = {
    "+imports": ["$import time", "$from ignite.engine import Events"],
    "+initialize": [
        "$@evaluator.add_event_handler(Events.STARTED, lambda e: print('COHORT_START', time.time(), flush=True))",
        "$@evaluator.add_event_handler(Events.COMPLETED, lambda e: print('COHORT_END', time.time(), flush=True))",
    ],
}


def _datalist(dataset_dir: Path, num_cases: int, path: Path) -> list[str]:
    listed = json.loads((dataset_dir / "dataset.json").read_text())["training"][:num_cases]
    images = [str((dataset_dir / case["image"]).resolve()) for case in listed]
    if len(images) < num_cases:
        raise SystemExit(f"{dataset_dir} lists {len(images)} cases, fewer than --num-cases {num_cases}")
    path.write_text(json.dumps({"name": "cohort benchmark", "training": [], "test": images}, indent=2))
    return images


def run_once(args: argparse.Namespace, processes: int, threads: int, workdir: Path, datalist: Path) -> dict[str, Any]:
    """One inference command with ``processes`` processes of ``threads`` threads each; returns its timings."""
    overlay = workdir / "timing.json"
    overlay.write_text(json.dumps(TIMING_OVERLAY))
    configs = [str(CONFIGS / "inference.json")]
    configs += [str(CONFIGS / "inference_qa.json")] if args.qa else []
    configs += [str(CONFIGS / "multi_gpu_inference.json")] if processes > 1 else []
    configs.append(str(overlay))
    output_dir = Path(tempfile.mkdtemp(prefix=f"out_{processes}_", dir=workdir))
    launcher = [sys.executable, "-m", "monai.bundle"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                    "--rdzv_backend=c10d", "--rdzv_endpoint=127.0.0.1:0", "-m", "monai.bundle"]  # fmt: skip
    command = [
        *launcher, "run", "inference", "--config_file", "[" + ",".join(repr(c) for c in configs) + "]",
        "--bundle_root", str(workdir), "--ckpt_path", str(args.ckpt), "--datalist_file", str(datalist),
        "--output_dir", str(output_dir), "--num_workers", "0",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    started = time.time()
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=args.max_seconds)
    wall = time.time() - started
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {proc.returncode}:\n{output[-5000:]}")
    written = re.findall(r"writing: (\S+_seg\.nii\.gz)", output)
    if len(written) != args.num_cases or len(set(written)) != args.num_cases:
        raise SystemExit(f"expected {args.num_cases} label maps written once each, got {len(written)} writes of "
                         f"{len(set(written))} files")  # fmt: skip
    starts = [float(t) for t in re.findall(r"COHORT_START (\S+)", output)]
    ends = [float(t) for t in re.findall(r"COHORT_END (\S+)", output)]
    if len(starts) != processes or len(ends) != processes:
        raise SystemExit(f"expected {processes} engine start and end times, got {len(starts)} and {len(ends)}")
    return {"processes": processes, "threads": threads, "evaluation_s": max(ends) - min(starts), "wall_s": wall}


def report_section(args: argparse.Namespace, machine: dict[str, str], runs: list[dict], load_end: str) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    loaded = max(os.getloadavg()[0], float(machine["Load average (1/5/15 min) at start"].split(",")[0])) >= usable
    lines = [
        START,
        "## Cohort inference: cases per minute, one process and several",
        "",
        "Written by `scripts/benchmark_cohort.py`; rerun the command below to update this section.",
        "",
        *[f"- {key}: {value}" for key, value in machine.items() if key not in ("GPU", "torch threads")],
        f"- Load average (1/5/15 min) at end: {load_end}",
        f"- Cases: the first {args.num_cases} MSD hippocampus cases (`imagesTr`), `inference.json`"
        + (" + `inference_qa.json`" if args.qa else "")
        + f", weights `{_shown(args.ckpt)}`; several processes: `torchrun --nproc_per_node P` with `multi_gpu_inference.json`"
        " (gloo); PxT: P processes of T threads (`OMP_NUM_THREADS`) each.",
        "- evaluation: cases over the span from the first rank's engine start to the last rank's end (loading, "
        "preprocessing, sliding window, inversion, saving); command: cases over the whole command's wall time, "
        "start-up (imports, process group, weights) included. Median of "
        f"{args.repeats} run(s).",
    ]
    if loaded:
        lines.append(
            "- **The machine was loaded** (1-minute load average at or above its usable cores, see above): other "
            "jobs shared the cores, so these figures are lower and noisier than on an idle machine, and the gain "
            "of a second process is understated."
        )
    if args.note:
        lines.append(f"- {args.note}")
    lines += [
        "",
        "| processes | threads each | evaluation (s) | cases/min (evaluation) | command (s) | cases/min (command) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for processes, threads in args.runs:
        mine = [r for r in runs if (r["processes"], r["threads"]) == (processes, threads)]
        evaluation = statistics.median(r["evaluation_s"] for r in mine)
        wall = statistics.median(r["wall_s"] for r in mine)
        lines.append(
            f"| {processes} | {threads} | {evaluation:.1f} | {60 * args.num_cases / evaluation:.0f} | "
            f"{wall:.1f} | {60 * args.num_cases / wall:.0f} |"
        )
    lines += _break_even(args, runs)
    lines += ["", END]
    return lines


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _break_even(args: argparse.Namespace, runs: list[dict]) -> list[str]:
    """Start-up and time per case of each setting against one process of one thread: the cohort size from which
    the sharded command is the faster one."""

    def median(processes: int, threads: int, key: str) -> float:
        return statistics.median(r[key] for r in runs if (r["processes"], r["threads"]) == (processes, threads))

    if (1, 1) not in args.runs:
        return []
    startup = median(1, 1, "wall_s") - median(1, 1, "evaluation_s")
    per_case = median(1, 1, "evaluation_s") / args.num_cases
    lines = [""]
    for processes, threads in args.runs:
        if processes == 1:
            continue
        other_startup = median(processes, threads, "wall_s") - median(processes, threads, "evaluation_s")
        other_per_case = median(processes, threads, "evaluation_s") / args.num_cases
        text = (
            f"{processes}x{threads} against 1x1: start-up {other_startup:.1f} s instead of {startup:.1f} s, "
            f"{other_per_case:.3f} s per case instead of {per_case:.3f} s"
        )
        if other_per_case < per_case and other_startup > startup:
            cases = (other_startup - startup) / (per_case - other_per_case)
            text += f"; the sharded command is the faster one from about {cases:.0f} cases on."
        lines.append(text + ("" if text.endswith(".") else "."))
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--num-cases", type=int, default=20)
    parser.add_argument("--runs", default="1x1,2x1,1x2", help="comma-separated PxT: P processes of T threads")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--qa", action="store_true", help="stack inference_qa.json (QC report, priors)")
    parser.add_argument("--dataset-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "msd_hippocampus")
    parser.add_argument("--ckpt", type=Path, default=REPO_ROOT / "models" / "model.pt")
    parser.add_argument("--note", default="", help="a line added to the section (e.g. what else ran)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--max-seconds", type=float, default=3600, help="time limit of one command")
    args = parser.parse_args(argv)
    try:
        args.runs = [tuple(int(n) for n in spec.lower().split("x")) for spec in args.runs.split(",") if spec.strip()]
    except ValueError:
        parser.error(f"--runs: expected PxT[,PxT...], got {args.runs!r}")
    if not args.runs or any(len(r) != 2 or min(r) < 1 or r[0] > args.num_cases for r in args.runs):
        parser.error("--runs: P and T must be positive and P at most --num-cases")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info("cpu")
    runs = []
    with tempfile.TemporaryDirectory(prefix="lightmedseg_cohort_") as tmp:
        workdir = Path(tmp)
        datalist = workdir / "dataset.json"
        _datalist(args.dataset_dir, args.num_cases, datalist)
        for _ in range(args.repeats):
            for processes, threads in args.runs:
                run = run_once(args, processes, threads, workdir, datalist)
                print(f"{processes}x{threads}: evaluation {run['evaluation_s']:.1f} s, command {run['wall_s']:.1f} s",
                      flush=True)  # fmt: skip
                runs.append(run)
    load_end = ", ".join(f"{avg:.2f}" for avg in os.getloadavg())
    section = report_section(args, machine, runs, load_end)
    write_section(args.output, "cohort", section)
    print("\n".join(section))
    print(f"Section written to {args.output}")


if __name__ == "__main__":
    main()
