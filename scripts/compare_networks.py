"""
Train and evaluate several networks through the bundle's own commands with one epoch budget, and table their
validation Dice and HD95, parameters, training time and CPU inference time per case.

For each network NAME (``lightmedseg`` is the bundle's default network; any other name is the overlay
``configs/networks/NAME.json`` that swaps ``network_def``), with the bundle's fixed train/validation split:

1. ``python -m monai.bundle run training --config_file "['configs/train.json', OVERLAY]" --epochs E ...`` into
   ``WORK/NAME`` (validation every ``val_interval`` epochs, the best ``model.pt`` kept, as for the shipped weights);
2. ``python -m monai.bundle run evaluating --config_file "['configs/train.json','configs/evaluate.json', OVERLAY]"``
   on the whole validation split: per-class Dice and HD95 from its ``per_class_metrics.csv``;
3. in a fresh worker process (this script with ``--worker``): the network built from the same configs, loaded
   with that ``model.pt``, runs ``validate#inferer`` (the sliding window) on the first ``--num-cases`` validation
   cases after ``validate#preprocessing``; per-case latency is the median wall time of the sliding-window pass,
   after one untimed pass.

``--shipped`` adds the row ``lightmedseg_shipped`` for the shipped ``models/model.pt`` (steps 2 and 3 only). Each
network's result is kept in ``WORK/NAME/result.json``; ``--reuse`` skips networks whose result was made with the same epochs and
threads, so networks can be added one at a time. The table goes between ``<!-- comparison:start -->`` and
``<!-- comparison:end -->`` of ``--output`` (replaced if present, else appended; the rest of the file is kept).

Usage::

    python scripts/compare_networks.py --networks lightmedseg,unet,segresnet --epochs 20
    python scripts/compare_networks.py --networks lightmedseg,unet --epochs 1 --num-train-cases 4 --output /tmp/b.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lightmedseg_bundle.benchmarking import machine_info, section_markers, write_section

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
DEFAULT_NETWORK = "lightmedseg"
SHIPPED = "lightmedseg_shipped"
REFERENCE = "segresnet"
START, END = section_markers("comparison")
RESULT_PREFIX = "COMPARISON_RESULT "


def config_files(name: str, *base: str) -> list[str]:
    """The config files of network ``name`` on top of the ``base`` configs (``configs/`` relative names)."""
    files = [str(CONFIGS / b) for b in base]
    if name not in (DEFAULT_NETWORK, SHIPPED):
        overlay = CONFIGS / "networks" / f"{name}.json"
        if not overlay.is_file():
            raise FileNotFoundError(f"no config overlay {overlay} for network {name!r}")
        files.append(str(overlay))
    return files


def checkpoint_dir(name: str, work_dir: Path) -> Path:
    """Where network ``name``'s ``model.pt`` is: the bundle's ``models/`` for the shipped row, else its run's."""
    return REPO_ROOT / "models" if name == SHIPPED else work_dir / name / "models"


def _config_arg(files: Sequence[str]) -> str:
    return "[" + ",".join(repr(str(f)) for f in files) + "]"


def _common_overrides(args: argparse.Namespace, ckpt_dir: Path) -> list[str]:
    overrides = [
        "--bundle_root", str(REPO_ROOT),
        "--dataset_dir", str(args.dataset_dir),
        "--ckpt_dir", str(ckpt_dir),
        "--num_workers", str(args.num_workers),
    ]  # fmt: skip
    if args.num_train_cases:
        overrides += ["--num_train_cases", str(args.num_train_cases)]
    if args.num_val_cases:
        overrides += ["--num_val_cases", str(args.num_val_cases)]
    return overrides


def _run(cmd: list[str], log: Path, threads: int) -> float:
    """Run ``cmd`` with ``threads`` torch threads, output to ``log``; return its wall time in seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"command failed (exit {proc.returncode}), log {log}:\n{shlex.join(cmd)}\n...\n{tail}")
    return time.perf_counter() - start


def training_recipe(files: Sequence[str]) -> dict[str, Any]:
    """ROI, batch, optimizer, schedule and augmentations of the merged ``files``, as the training used them."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(list(files))
    return {
        "roi_size": list(parser["roi_size"]),
        "batch_size": parser["batch_size"],
        "num_samples": parser["num_samples"],
        "optimizer": _class_name(parser["optimizer"]),
        "learning_rate": parser["learning_rate"],
        "lr_scheduler": _class_name(parser["lr_scheduler"]),
        "augmentations": [_class_name(t) for t in parser["augmentations"]],
    }


def _class_name(component: dict[str, Any]) -> str:
    return component["_target_"].rsplit(".", 1)[-1]


def recipe_text(recipe: dict[str, Any]) -> str:
    """One line of markdown for a :func:`training_recipe`."""
    roi = "x".join(str(s) for s in recipe["roi_size"])
    augmentations = ", ".join(recipe["augmentations"]) or "none"
    return (
        f"ROI {roi}, batch {recipe['batch_size']} x {recipe['num_samples']} crop(s), {recipe['optimizer']} at "
        f"{recipe['learning_rate']:g} with {recipe['lr_scheduler']}; augmentation {augmentations}"
    )


def _per_class_metrics(eval_dir: Path) -> dict[str, dict[str, float]]:
    """``{"dice": {"anterior": ..., "mean": ...}, "hd95": {...}}`` from evaluate.json's ``per_class_metrics.csv``."""
    with open(eval_dir / "per_class_metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {metric: {row["class"]: float(row[metric]) for row in rows} for metric in ("dice", "hd95")}


def latency_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Build ``args.worker``'s network from its configs, load its weights, time the sliding window per case."""
    from monai.bundle import ConfigParser

    torch.set_num_threads(args.threads)
    name = args.worker
    parser = ConfigParser()
    parser.read_config(config_files(name, "train.json"))
    parser.update({"bundle_root": str(REPO_ROOT), "dataset_dir": str(args.dataset_dir), "num_workers": 0})
    parser["device"] = "$torch.device('cpu')"
    network = parser.get_parsed_content("network")  # with the CPU pass, as the configs run it on a CPU
    weights = checkpoint_dir(name, args.work_dir) / "model.pt"
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval()
    preprocessing = parser.get_parsed_content("validate#preprocessing")
    inferer = parser.get_parsed_content("validate#inferer")
    cases = parser.get_parsed_content("val_datalist")[: args.num_cases]
    images = [preprocessing(dict(case))["image"].as_tensor()[None] for case in cases]
    seconds = []
    with torch.inference_mode():
        inferer(images[0], network)  # warm-up
        for image in images:
            start = time.perf_counter()
            inferer(image, network)
            seconds.append(time.perf_counter() - start)
    return {
        "params": sum(p.numel() for p in network.parameters()),
        "latency_ms": 1000 * statistics.median(seconds),
        "latency_cases": len(seconds),
    }


def compare(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train (unless ``name`` is the shipped row), evaluate and time one network; return and store its result."""
    run_dir = args.work_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    python = [sys.executable, "-m", "monai.bundle", "run"]
    common = _common_overrides(args, checkpoint_dir(name, args.work_dir))
    result: dict[str, Any] = {"network": name, "threads": args.threads}
    if name != SHIPPED:
        files = config_files(name, "train.json")
        print(f"[{name}] training {args.epochs} epoch(s) ...", flush=True)
        train_cmd = [*python, "training", "--config_file", _config_arg(files), *common]
        # without --reuse a network is retrained: its earlier run in the work folder is replaced on purpose
        train_cmd += ["--output_dir", str(run_dir / "train"), "--epochs", str(args.epochs), "--overwrite", "true"]
        result["train_seconds"] = _run(train_cmd, run_dir / "train.log", args.threads)
        result["epochs"] = args.epochs
        result["recipe"] = training_recipe(files)
    print(f"[{name}] evaluating ...", flush=True)
    files = config_files(name, "train.json", "evaluate.json")
    eval_cmd = [
        *python,
        "evaluating",
        "--config_file",
        _config_arg(files),
        *common,
        "--output_dir",
        str(run_dir / "eval"),
    ]
    _run(eval_cmd, run_dir / "evaluate.log", args.threads)
    result.update(_per_class_metrics(run_dir / "eval"))
    print(f"[{name}] timing inference ...", flush=True)
    worker = [sys.executable, str(Path(__file__).resolve()), "--worker", name, *_worker_args(args)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(worker, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"latency worker for {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result.update(json.loads(lines[-1][len(RESULT_PREFIX) :]))
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def _worker_args(args: argparse.Namespace) -> list[str]:
    out = ["--work-dir", str(args.work_dir), "--dataset-dir", str(args.dataset_dir)]
    return out + ["--threads", str(args.threads), "--num-cases", str(args.num_cases)]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _recipe_groups(results: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Trained networks grouped by the recipe they were trained with (train.json may change between runs)."""
    groups: dict[str, list[str]] = {}
    for r in results:
        if "recipe" in r:
            groups.setdefault(recipe_text(r["recipe"]), []).append(r["network"])
    return groups


def section(results: list[dict[str, Any]], args: argparse.Namespace, machine: dict[str, str]) -> list[str]:
    """The markdown section: setup, one row per network, and the issue's targets at this budget."""
    by_name = {r["network"]: r for r in results}
    reference = by_name.get(REFERENCE)
    lines = [
        START,
        "## Networks trained with the bundle (same split, same epoch budget)",
        "",
        "Written by `scripts/compare_networks.py`; rerun the command below to update it.",
        "",
        f"- Command: {machine['Command']}",
        f"- Date: {machine['Date']}; CPU: {machine['CPU']}; {args.threads} thread(s) for training, evaluation and "
        f"timing; {machine['Software']}.",
        "- Data: MSD Task04 Hippocampus, the bundle's fixed split (`val_fraction` 0.2, `split_seed` 0), "
        "`configs/train.json` defaults except `--epochs` (the recipes below); each "
        "network other than LightMedSeg is the overlay `configs/networks/<name>.json`.",
        "- Dice / HD95: `configs/evaluate.json` on the whole validation split (original geometry), best "
        "`model.pt` by validation Dice. Inference: median per-case time of the validation sliding window "
        f"(`validate#inferer`) on {results[0].get('latency_cases', args.num_cases) if results else args.num_cases} "
        "validation cases, loading and preprocessing excluded.",
        *(f"- Recipe of {', '.join(names)}: {recipe}." for recipe, names in _recipe_groups(results).items()),
        "",
        "| network | params (M) | params / SegResNet | epochs | training (min) | Dice anterior | Dice posterior "
        "| mean Dice | mean HD95 (mm) | CPU inference per case (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["params"] / reference["params"] if reference else None
        minutes = r["train_seconds"] / 60 if "train_seconds" in r else None
        lines.append(
            f"| {r['network']} | {r['params'] / 1e6:.3f} | {_fmt(ratio, '.3f')} | {r.get('epochs', '-')} | "
            f"{_fmt(minutes, '.1f')} | {r['dice']['anterior']:.3f} | {r['dice']['posterior']:.3f} | "
            f"{r['dice']['mean']:.3f} | {r['hd95']['mean']:.2f} | {r['latency_ms']:.0f} |"
        )
    light = by_name.get(DEFAULT_NETWORK)
    if light and reference:
        gap = 100 * (reference["dice"]["mean"] - light["dice"]["mean"])
        share = 100 * light["params"] / reference["params"]
        lines += [
            "",
            f"At this budget LightMedSeg's mean Dice is {abs(gap):.2f} points {'below' if gap > 0 else 'above'} "
            f"SegResNet's (target: within 2 below) with {share:.1f} % of its parameters (target: < 10 %).",
        ]
    return lines + [END]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--networks", default="lightmedseg,unet,segresnet", help="comma-separated network names")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of every network")
    parser.add_argument("--shipped", action="store_true", help="add a row for the shipped models/model.pt")
    parser.add_argument("--dataset-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "msd_hippocampus")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "runs" / "compare")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=2, help="data loader workers of training/evaluation")
    parser.add_argument("--num-cases", type=int, default=10, help="validation cases timed per network")
    parser.add_argument("--num-train-cases", type=int, default=0, help="limit the training cases (0: all)")
    parser.add_argument("--num-val-cases", type=int, default=0, help="limit the validation cases (0: all)")
    parser.add_argument("--reuse", action="store_true", help="keep results made with the same epochs and threads")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.networks = [n.strip() for n in args.networks.split(",") if n.strip()]
    if args.epochs < 1 or args.threads < 1 or args.num_cases < 1:
        parser.error("--epochs, --threads and --num-cases must be at least 1")
    for name in args.networks:
        try:
            config_files(name)
        except FileNotFoundError as e:
            parser.error(str(e))
    if not (args.dataset_dir / "dataset.json").is_file():
        parser.error(f"--dataset-dir {args.dataset_dir} has no dataset.json")
    args.work_dir = args.work_dir.resolve()
    args.dataset_dir = args.dataset_dir.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(latency_worker(args)), flush=True)
        return
    machine = machine_info("cpu")
    names = ([SHIPPED] if args.shipped else []) + args.networks
    results = []
    for name in names:
        stored = args.work_dir / name / "result.json"
        previous = json.loads(stored.read_text()) if args.reuse and stored.is_file() else {}
        epochs = None if name == SHIPPED else args.epochs
        if previous and previous["threads"] == args.threads and previous.get("epochs") == epochs:
            print(f"[{name}] reusing {stored}", flush=True)
            results.append(previous)
            continue
        results.append(compare(name, args))
        r = results[-1]
        print(f"[{name}] mean Dice {r['dice']['mean']:.4f}, HD95 {r['hd95']['mean']:.2f} mm, "
              f"{r['latency_ms']:.0f} ms/case", flush=True)  # fmt: skip
    write_section(args.output, "comparison", section(results, args, machine))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
