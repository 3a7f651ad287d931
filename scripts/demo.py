"""LightMedSeg bundle demo: synthetic data -> short training -> evaluation -> inference -> overlay PNG.

Runs the same ``python -m monai.bundle run ...`` commands as the model card (docs/README.md), from the bundle
root, on a synthetic hippocampus-like dataset, and writes everything under ``--output`` (default
``demo_output/``)::

    python scripts/demo.py                  # a few minutes on 2 idle CPU cores (60 epochs; 10 min beside a test run)
    python scripts/demo.py --epochs 10 --output /tmp/lightmedseg_demo
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

BUNDLE_ROOT = Path(__file__).resolve().parent.parent


SHOWN = ("ETA", "finished:", "Metrics --")
"""Marks of the bundle's log lines the demo echoes: progress.TrainingSummary / RunSummary and the metrics."""


def _free_cores() -> int:
    """Cores not already busy (CPU count less the 1-minute load), at least 1: torch's threads then do not fight
    other work on a loaded machine, which made epochs 30-50x slower with one thread per CPU."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cpus
    return max(1, min(cpus, int(cpus - load + 0.5)))


def _run(cmd: list[str], log_file: Path) -> None:
    """Run a bundle command from the bundle root, echoing it and teeing its output to ``log_file``."""
    env = dict(os.environ)
    threads = env.setdefault("OMP_NUM_THREADS", str(_free_cores()))
    print(f"\n$ {shlex.join(cmd)}\n  (log: {log_file}; {threads} thread(s))", flush=True)
    env["PYTHONWARNINGS"] = "ignore"
    start = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=BUNDLE_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            # the trainer logs loss per iteration; show epoch N/M with the ETA, metrics, summaries and errors
            if any(mark in line for mark in SHOWN) or "rror" in line:
                print("  " + line.rstrip()[-200:], flush=True)
        proc.wait()
    if proc.returncode != 0:
        sys.exit(f"command failed with exit code {proc.returncode}, see {log_file}")
    print(f"  done in {time.monotonic() - start:.0f} s", flush=True)


def _mean_dice(metrics_csv: Path) -> float:
    with open(metrics_csv) as f:
        return float(dict(csv.reader(f))["val_mean_dice"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=BUNDLE_ROOT / "demo_output", help="output folder (default: demo_output/)"
    )
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default: 60)")
    parser.add_argument("--num-cases", type=int, default=24, help="synthetic cases to generate (default: 24)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default: 0)")
    args = parser.parse_args()

    from lightmedseg_bundle.data import make_demo_dataset, train_val_split

    start = time.monotonic()
    out = args.output.resolve()
    data_dir, ckpt_dir = out / "data", out / "models"
    train_dir, eval_dir, pred_dir = out / "train", out / "eval", out / "inference"
    for folder in (train_dir, eval_dir, pred_dir):
        folder.mkdir(parents=True, exist_ok=True)

    print(f"1. synthetic data: {args.num_cases} cases -> {data_dir}", flush=True)
    dataset_json = make_demo_dataset(data_dir, num_cases=args.num_cases, seed=args.seed)

    bundle = [sys.executable, "-m", "monai.bundle", "run"]
    common = ["--dataset_dir", str(data_dir), "--ckpt_dir", str(ckpt_dir)]
    print(f"\n2. training, {args.epochs} epochs", flush=True)
    _run(
        [*bundle, "training", "--config_file", "configs/train.json", *common, "--output_dir", str(train_dir),
         "--epochs", str(args.epochs), "--val_interval", str(max(1, min(5, args.epochs // 4))), "--num_workers", "0",
         "--overwrite", "true"],  # the demo's own folder: a second demo replaces the first
        out / "train.log",
    )  # fmt: skip

    print("\n3. evaluation of the best checkpoint on the validation split", flush=True)
    _run(
        [*bundle, "--config_file", "['configs/train.json','configs/evaluate.json']", *common,
         "--output_dir", str(eval_dir), "--num_workers", "0"],
        out / "evaluate.log",
    )  # fmt: skip

    case = train_val_split(str(dataset_json), 0.2, 0)["validation"][0]
    image = Path(case["image"])
    print(f"\n4. inference on {image.name}", flush=True)
    _run(
        [*bundle, "inference", "--config_file", "configs/inference.json", "--ckpt_dir", str(ckpt_dir),
         "--input_dir", str(image.parent), "--input_pattern", image.name, "--output_dir", str(pred_dir),
         "--overwrite", "true"],
        out / "inference.log",
    )  # fmt: skip
    name = image.name[: -len(".nii.gz")]
    pred = pred_dir / name / f"{name}_seg.nii.gz"

    overlay = out / "overlay.png"
    print(f"\n5. overlay -> {overlay}", flush=True)
    from lightmedseg_bundle.visualize import save_overlay_png

    save_overlay_png(str(image), case["label"], str(pred), str(overlay), num_slices=3)

    dice = _mean_dice(eval_dir / "metrics.csv")
    print(
        f"\nDemo finished in {time.monotonic() - start:.0f} s. Outputs in {out}:\n"
        f"  data              {data_dir}\n"
        f"  checkpoints       {ckpt_dir} (model.pt = best validation Dice)\n"
        f"  training logs     {out / 'train.log'}, TensorBoard: tensorboard --logdir {train_dir}\n"
        f"  evaluation        {eval_dir} (metrics.csv, per_case_metrics.csv, per_class_metrics.csv)\n"
        f"  prediction        {pred}\n"
        f"  overlay           {overlay}\n"
        f"Final mean Dice (anterior + posterior, validation split): {dice:.3f}"
    )
    with open(eval_dir / "per_class_metrics.csv") as f:
        for row in csv.DictReader(f):
            print(f"  {row['class']:<10} Dice {float(row['dice']):.3f}  HD95 {float(row['hd95']):.2f} mm")


if __name__ == "__main__":
    main()
