"""
Per-case CPU latency of LightMedSeg's sliding-window inference with PyTorch eager, TorchScript and ONNX Runtime,
measured in one run, and the peak memory of sliding-window inference on a BraTS-sized 4-channel volume.

Two workloads, each runtime measured on each in a fresh worker subprocess (this script re-invoked with
``--worker``), so that one runtime's allocator state cannot affect another's:

- ``cases``: the first ``--num-cases`` hippocampus cases of ``--dataset-dir`` (its ``dataset.json``), preprocessed
  by the ``preprocessing`` of ``configs/inference.json`` (RAS, z-score, padding to a multiple of 16) and predicted
  with that config's sliding window (its ``roi_size`` and ``sw_batch_size``, overlap 0.5, Gaussian weights).
  Per-case latency: the wall time of the sliding-window inference of one preprocessed case (loading,
  preprocessing and saving, the same for every runtime, are left out); median, min and max over all cases and
  ``--repeats`` passes, after two untimed warm-up passes on one window batch. The label maps are compared with
  the eager ones (Dice).
- ``large``: one 4-channel volume of ``--large-size`` (default 240 x 240 x 155: a BraTS 2015 case of
  ``--brats-dir`` with its two channels repeated, z-scored per channel inside the brain, or random data with
  ``--large-source random``), padded to a multiple of 16 and predicted with the sliding window of
  ``configs/tasks/brats.json`` (``roi_size`` 128, ``sw_batch_size`` 2, overlap 0.5): latency and peak RSS.

Runtimes: ``eager`` (the ``network_def`` of ``configs/inference.json`` with the CPU pass, as that config runs it
on a CPU, in eval mode under ``torch.inference_mode()``), ``torchscript`` (``torch.jit.script`` of the plain
network, what ``monai.bundle ckpt_export`` writes) and ``onnxruntime`` (the CPU execution provider, through
``lightmedseg_bundle.inference.OnnxPredictor``, on the file that
``python -m monai.bundle onnx_export --args_file configs/onnx_export.json`` writes; the script runs that command
once per input channel count). Every runtime uses ``--threads`` threads.

Peak RSS: the worker's ``VmHWM``, reset through ``/proc/self/clear_refs`` after the inputs are loaded, the
runtime built and the warm-up passes run, so it is the peak of the timed passes; the increase is over the RSS
right before them (see ``scripts/benchmark.py``).

Weights: ``--ckpt`` (default ``models/model.pt`` when it exists) for the hippocampus cases, otherwise, and always
for the 4-channel volume, a freshly initialised network (seed 0). Latency and memory do not depend on the weights.

The result is the section between ``<!-- runtimes:start -->`` and ``<!-- runtimes:end -->`` of ``--output``
(default ``docs/benchmarks.md``): replaced if present, appended otherwise; the rest of the file is kept.

Usage::

    python scripts/benchmark_runtimes.py
    python scripts/benchmark_runtimes.py --num-cases 5 --repeats 1 --large-size 96,96,64 --output /tmp/bench.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightmedseg_bundle.benchmarking import machine_info, peak_rss_bytes, reset_peak_rss, section_markers, write_section
from lightmedseg_bundle.cpu import optimize_for_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
RUNTIMES = ("eager", "torchscript", "onnxruntime")
_INFERENCE = json.loads((CONFIGS / "inference.json").read_text())
WORKLOADS = {  # sliding window of the config each workload stands for; the hippocampus one is read from it
    "cases": {
        "roi_size": tuple(_INFERENCE["roi_size"]),
        "sw_batch_size": _INFERENCE["sw_batch_size"],
        "in_channels": _INFERENCE["in_channels"],
    },
    "large": {"roi_size": (128, 128, 128), "sw_batch_size": 2, "in_channels": 4},
}
START, END = section_markers("runtimes")
RESULT_PREFIX = "RUNTIMES_RESULT "
MIB = 2**20


def _configs(in_channels: int) -> list[str]:
    """The configs of a workload's network: ``inference.json``, with the BraTS overlay for 4 channels (its head)."""
    return ["inference.json"] + (["tasks/brats.json"] if in_channels == 4 else [])


def _network(in_channels: int, ckpt: Path | None) -> torch.nn.Module:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in _configs(in_channels)])
    parser["in_channels"] = in_channels
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def")
    if ckpt is not None:
        network.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    return network.eval()


def _hippocampus_cases(dataset_dir: Path, num_cases: int) -> list[torch.Tensor]:
    from monai.bundle import ConfigParser

    parser = ConfigParser(ConfigParser.load_config_file(CONFIGS / "inference.json"))
    preprocessing = parser.get_parsed_content("preprocessing")
    listed = json.loads((dataset_dir / "dataset.json").read_text())["training"][:num_cases]
    return [preprocessing({"image": str(dataset_dir / case["image"])})["image"].as_tensor()[None] for case in listed]


def _large_volume(size: Sequence[int], source: str, brats_dir: Path) -> torch.Tensor:
    if source == "brats":
        import nibabel as nib

        listed = json.loads((brats_dir / "dataset.json").read_text())["training"]
        data = np.asarray(nib.load(brats_dir / listed[0]["image"]).dataobj, dtype=np.float32)  # (X, Y, Z, C)
        data = np.moveaxis(data, -1, 0)[:, : size[0], : size[1], : size[2]]
        data = np.concatenate([data] * (-(-4 // data.shape[0])))[:4]
    else:
        data = np.random.default_rng(0).normal(size=(4, *size)).astype(np.float32)
    brain = data != data.reshape(4, -1).min(axis=1)[:, None, None, None]  # background at each channel's minimum
    for channel, mask in zip(data, brain, strict=True):
        values = channel[mask]
        channel[mask] = (values - values.mean()) / max(float(values.std()), 1e-8)
        channel[~mask] = 0.0
    padded = [-(-s // 16) * 16 for s in data.shape[1:]]
    pad = [(0, 0)] + [((p - s) // 2, p - s - (p - s) // 2) for p, s in zip(padded, data.shape[1:], strict=True)]
    return torch.from_numpy(np.pad(data, pad))[None]


def _predictor(runtime: str, in_channels: int, model_dir: Path, ckpt: Path | None, threads: int):
    if runtime == "onnxruntime":
        from lightmedseg_bundle.inference import OnnxPredictor

        return OnnxPredictor(model_dir / f"model_{in_channels}ch.onnx", num_threads=threads)
    network = _network(in_channels, ckpt)
    return torch.jit.script(network) if runtime == "torchscript" else optimize_for_cpu(network)


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one runtime on one workload in this process."""
    from monai.inferers import SlidingWindowInferer

    torch.set_num_threads(args.threads)
    spec = dict(WORKLOADS[args.workload])
    if args.workload == "large":
        spec["roi_size"] = (args.large_roi,) * 3
    if args.workload == "cases":
        inputs = _hippocampus_cases(args.dataset_dir, args.num_cases)
        repeats = args.repeats
    else:
        inputs = [_large_volume(args.large_size, args.large_source, args.brats_dir)]
        repeats = args.large_repeats
    ckpt = args.ckpt if args.workload == "cases" else None  # the checkpoint is the 1-channel hippocampus model
    predictor = _predictor(args.worker, spec["in_channels"], args.model_dir, ckpt, args.threads)
    inferer = SlidingWindowInferer(spec["roi_size"], spec["sw_batch_size"], overlap=0.5, mode="gaussian")

    with torch.inference_mode():
        roi = spec["roi_size"]
        for _ in range(2):  # warm-up (TorchScript's profiling executor optimises on the second call)
            inferer(inputs[0][..., : roi[0], : roi[1], : roi[2]], predictor)
        peak_was_reset = reset_peak_rss()
        rss_before = _current_rss()
        latencies, labels = [], []
        for repeat in range(repeats):
            for x in inputs:
                start = time.perf_counter()
                logits = inferer(x, predictor)
                latencies.append(time.perf_counter() - start)
                if repeat == 0 and args.workload == "cases":
                    labels.append(logits.argmax(dim=1)[0].to(torch.uint8).numpy())
    peak = peak_rss_bytes()
    if labels:
        np.savez_compressed(args.model_dir / f"labels_{args.worker}.npz", *labels)
    return {
        "status": "ok",
        "peak_rss_since_timing": peak_was_reset,
        "latencies": latencies,
        "peak_rss": peak,
        "rss_before": rss_before,
        "input_shape": list(inputs[0].shape),
        "buffers_bytes": int(inputs[0][0, 0].numel()) * 4 * (spec["in_channels"] + 3 + 3 + 1),
        "num_cases": len(inputs),
    }


def _current_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def export_onnx(model_dir: Path, in_channels: int, ckpt: Path | None) -> Path:
    """Export the network with the bundle's documented command; returns the ``.onnx`` file."""
    ckpt_file = ckpt
    if ckpt_file is None:
        ckpt_file = model_dir / f"fresh_{in_channels}ch.pt"
        torch.save(_network(in_channels, None).state_dict(), ckpt_file)
    target = model_dir / f"model_{in_channels}ch.onnx"
    config_file = "[" + ",".join(repr(str(CONFIGS / c)) for c in _configs(in_channels)) + "]"
    command = [
        sys.executable, "-m", "monai.bundle", "onnx_export", "--args_file", str(CONFIGS / "onnx_export.json"),
        "--config_file", config_file, "--ckpt_file", str(ckpt_file), "--filepath", str(target),
        "--input_shape", f"[1,{in_channels},32,32,32]",
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ONNX export failed: {shlex.join(command)}\n{proc.stderr[-3000:]}")
    return target


def measure(runtime: str, workload: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--worker", runtime, "--workload", workload, "--model-dir", str(args.model_dir),
        "--threads", str(args.threads), "--num-cases", str(args.num_cases), "--repeats", str(args.repeats),
        "--large-size", ",".join(map(str, args.large_size or [])) or "none", "--large-source", args.large_source,
        "--large-repeats", str(args.large_repeats), "--large-roi", str(args.large_roi),
        "--dataset-dir", str(args.dataset_dir), "--brats-dir", str(args.brats_dir),
    ]  # fmt: skip
    if args.ckpt is not None:
        command += ["--ckpt", str(args.ckpt)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    print(f"measuring {runtime} on {workload} ...", flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.max_seconds)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"worker {runtime}/{workload} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def _dice_with_eager(model_dir: Path, runtime: str) -> float | None:
    eager, other = model_dir / "labels_eager.npz", model_dir / f"labels_{runtime}.npz"
    if not (eager.is_file() and other.is_file()):
        return None
    scores = []
    with np.load(eager) as a, np.load(other) as b:
        for key in a.files:
            for label in np.union1d(np.unique(a[key]), np.unique(b[key])):
                if label == 0:
                    continue
                x, y = a[key] == label, b[key] == label
                scores.append(2.0 * float((x & y).sum()) / float(x.sum() + y.sum()))
    return min(scores) if scores else 1.0


def report_section(args: argparse.Namespace, machine: dict[str, str], results: dict) -> list[str]:
    import onnxruntime

    fresh = "freshly initialised (seed 0); latency and memory do not depend on weights"
    weights = (f"{args.ckpt} (hippocampus cases), 4-channel network " if args.ckpt is not None else "") + fresh
    lines = [
        START,
        "## CPU runtimes: PyTorch eager, TorchScript, ONNX Runtime",
        "",
        "Written by `scripts/benchmark_runtimes.py`; rerun the command below to update this section.",
        "",
        *[f"- {key}: {value}" for key, value in machine.items() if key not in ("GPU", "Device", "torch threads")],
        f"- Threads per runtime: {args.threads}; onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
        f"- Weights: {weights}",
        "- Per-case latency: wall time of the sliding-window inference of one preprocessed case; loading, "
        "preprocessing and saving are the same for every runtime and left out. Peak RSS: the worker's `VmHWM` "
        "during the timed passes (reset after loading and two warm-up passes); increase: over the RSS before them.",
    ]
    if any((runtime, "cases") in results for runtime in args.runtimes):
        cases = WORKLOADS["cases"]
        lines += [
            "",
            f"### Per-case latency: {args.num_cases} MSD hippocampus cases, roi {'x'.join(map(str, cases['roi_size']))}, "
            f"sw_batch_size {cases['sw_batch_size']} (`inference.json`)",
            "",
            "| runtime | median s/case | min | max | passes | peak RSS (MiB) | RSS increase (MiB) "
            "| min Dice vs eager |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
    for runtime in args.runtimes:
        if (runtime, "cases") not in results:
            continue
        r = results[(runtime, "cases")]
        lat = r["latencies"]
        dice = r.get("min_dice_vs_eager")
        lines.append(
            f"| {runtime} | {statistics.median(lat):.3f} | {min(lat):.3f} | {max(lat):.3f} | {len(lat)} | "
            f"{r['peak_rss'] / MIB:.0f} | {(r['peak_rss'] - r['rss_before']) / MIB:.0f} | "
            f"{'-' if dice is None else f'{dice:.5f}'} |"
        )
    if any((runtime, "large") in results for runtime in args.runtimes):
        large = [results[(rt, "large")] for rt in args.runtimes if (rt, "large") in results]
        shape, buffers = large[0]["input_shape"], large[0]["buffers_bytes"] / MIB
        size = " x ".join(map(str, args.large_size))
        lines += [
            "",
            f"### Sliding-window memory: 4 x {size} volume ({args.large_source}), padded to "
            f"{' x '.join(map(str, shape[1:]))}, roi {args.large_roi}, sw_batch_size 2 (`tasks/brats.json`)",
            "",
            f"Input, 3-channel output, aggregation and count maps take {buffers:.0f} MiB in float32; the network runs "
            f"on {args.large_roi}^3 windows only, so the peak stays bounded by these buffers plus one window batch.",
            "",
            "| runtime | latency (s) | peak RSS (MiB) | RSS increase (MiB) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for runtime in args.runtimes:
            r = results.get((runtime, "large"))
            if r is not None:
                lines.append(
                    f"| {runtime} | {statistics.median(r['latencies']):.2f} | {r['peak_rss'] / MIB:.0f} | "
                    f"{(r['peak_rss'] - r['rss_before']) / MIB:.0f} |"
                )
    lines += ["", END]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"comma-separated subset of {RUNTIMES}")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--num-cases", type=int, default=20, help="hippocampus cases; 0 skips that workload")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the cases")
    parser.add_argument("--large-size", default="240,240,155", help="X,Y,Z of the 4-channel volume; 'none' skips it")
    parser.add_argument("--large-source", choices=("brats", "random"), default="brats")
    parser.add_argument("--large-repeats", type=int, default=1)
    parser.add_argument("--large-roi", type=int, default=128, help="edge of the sliding window on the large volume")
    shared = REPO_ROOT.parent / "shared" / "data"
    parser.add_argument("--dataset-dir", type=Path, default=shared / "msd_hippocampus")
    parser.add_argument("--brats-dir", type=Path, default=shared / "brats2015_deepmedic_2ch")
    parser.add_argument("--ckpt", type=Path, default=None, help="state dict; default models/model.pt if present")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw measurements to this file")
    parser.add_argument("--max-seconds", type=float, default=3600, help="time limit of one worker")
    parser.add_argument("--worker", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument("--workload", choices=tuple(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in args.runtimes if r not in RUNTIMES]
    if unknown:
        parser.error(f"unknown runtime(s) {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    args.large_size = None if args.large_size == "none" else [int(v) for v in args.large_size.split(",")]
    if args.ckpt is None and (REPO_ROOT / "models" / "model.pt").is_file() and args.worker is None:
        args.ckpt = REPO_ROOT / "models" / "model.pt"
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(run_worker(args)), flush=True)
        return
    machine = machine_info("cpu")
    workloads = (["cases"] if args.num_cases > 0 else []) + (["large"] if args.large_size else [])
    if not workloads:
        raise SystemExit("nothing to measure: --num-cases 0 and --large-size none")
    results = {}
    with tempfile.TemporaryDirectory(prefix="lightmedseg_runtimes_") as tmp:
        args.model_dir = Path(tmp)
        if "onnxruntime" in args.runtimes:
            for workload in workloads:
                print(f"exporting the {WORKLOADS[workload]['in_channels']}-channel network to ONNX ...", flush=True)
                ckpt = args.ckpt if workload == "cases" else None
                export_onnx(args.model_dir, WORKLOADS[workload]["in_channels"], ckpt)
        for workload in workloads:
            for runtime in args.runtimes:
                results[(runtime, workload)] = measure(runtime, workload, args)
                if workload == "cases":
                    results[(runtime, workload)]["min_dice_vs_eager"] = _dice_with_eager(args.model_dir, runtime)
        section = report_section(args, machine, results)
    if args.json is not None:
        raw = {f"{runtime}/{workload}": result for (runtime, workload), result in results.items()}
        args.json.write_text(json.dumps({"machine": machine, "results": raw}, indent=2))
    write_section(args.output, "runtimes", section)
    print("\n".join(section))
    print(f"Section written to {args.output}")


if __name__ == "__main__":
    main()
