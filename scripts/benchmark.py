"""
Benchmark LightMedSeg against the bundle's other networks and MONAI's UNet and SegResNet, each built from the
bundle's own configs, plain and with the bundle's CPU pass, and write the results as markdown.

Every network is the ``network_def`` that ships: ``configs/train.json`` for LightMedSeg, with the overlay
``configs/networks/<name>.json`` for each peer. Each (network, variant) is measured in a fresh worker process (this
script re-invoked with ``--worker``), so that one model's allocator state cannot affect another's; with ``--rounds R``
every worker runs R times, round-robin over the networks, and each figure is the median over the rounds. The
variants are ``plain`` (the modules as written) and ``cpu`` (after :func:`lightmedseg_bundle.cpu.optimize_for_cpu`,
what the configs apply on a CPU through ``cpu_kernels``), so that architecture and kernels can be told apart.

- Forward at 1 x 4 x S^3 (``--size``, default 128): the network as the BraTS overlay (``configs/tasks/brats.json``:
  4 modalities, 3 regions) configures it; median/min/max of ``--repeats`` passes after ``--warmup`` in ``eval()``
  under :func:`torch.inference_mode`; MACs by :class:`torch.utils.flop_counter.FlopCounterMode` / 2 (convolutions,
  matmuls and attention; norms, activations and element-wise ops are not counted); achieved GFLOP/s = 2 x MACs /
  median latency, beside the machine's peak (the median GFLOP/s of a 2048 x 2048 fp32 matmul on the same threads).
- Peak RSS: the worker's ``VmHWM``, reset through ``/proc/self/clear_refs`` just before the first forward pass at
  S^3, so it is the peak of the forward passes (runtime, weights and input included); peak tensor memory: the most
  tensor storage alive at once during one forward pass (:class:`LiveTensorMemory`).
- Training step: the hippocampus network of ``train.json`` with its ``loss`` and ``optimizer``, a batch of
  ``batch_size`` x 1 x ``roi_size`` (2 x 1 x 48 x 64 x 48), forward + loss + backward + optimizer step; median of
  ``--train-steps`` steps after 3 warm-up steps.
- Per case: ``configs/inference.json``'s preprocessing and sliding window on the first ``--num-cases`` hippocampus
  cases of ``--dataset-dir``; median wall time of the sliding window per case (loading and preprocessing excluded).
- Training epoch (``--epoch``): one epoch of ``configs/train.json`` (with the peer's overlay) through its own
  Ignite ``SupervisedTrainer``, data loading and augmentation included, on the hippocampus training split, with the
  configs' defaults (so with the CPU pass on a CPU); time from the epoch's start to its last iteration.

A network that lacks an optional dependency, runs out of memory or whose worker exceeds ``--max-seconds`` is
tabled as skipped with the reason; any other failure is an error and nothing is written. Missed targets are reported
as MISS and do not change the exit status.

Usage::

    python scripts/benchmark.py --epoch
    python scripts/benchmark.py --size 64 --repeats 3 --networks lightmedseg,unet --output /tmp/bench.md
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import torch
from monai.bundle import ConfigParser
from monai.utils import OptionalImportError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightmedseg_bundle.benchmarking import (
    LiveTensorMemory,
    machine_info,
    marked_sections,
    peak_rss_bytes,
    reset_peak_rss,
)
from lightmedseg_bundle.cpu import optimize_for_cpu, register_flop_formulas

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"
NETWORKS: dict[str, tuple[str, ...]] = {
    "lightmedseg": (),
    "veloxseg": ("networks/veloxseg.json",),
    "refineformer3d": ("networks/refineformer3d.json",),
    "segmaformer": ("networks/segmaformer.json",),
    "hrmedseg": ("networks/hrmedseg.json",),
    "unet": ("networks/unet.json",),
    "segresnet": ("networks/segresnet.json",),
}
"""Each benchmarked network by name, as its config overlays on ``train.json`` (``configs/`` relative)."""
VARIANTS = ("plain", "cpu")
OURS, UNET, VELOXSEG = "lightmedseg", "unet", "veloxseg"
LARGE_INPUT_OVERLAY = "tasks/brats.json"
RESULT_PREFIX = "BENCHMARK_RESULT "
MIB = 2**20
Result = dict[str, Any]
"""A worker's JSON result: ``status`` ``"ok"`` with the measurements, or ``"skipped"`` with a ``reason``."""


def config_parser(name: str, *overlays: str, **overrides: Any) -> ConfigParser:
    """``train.json`` (or ``base`` in ``overrides``), ``overlays``, then ``name``'s network overlay, on the CPU."""
    base = overrides.pop("base", "train.json")
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in (base, *overlays, *NETWORKS[name])])
    parser.update({"device": "$torch.device('cpu')", "bundle_root": str(REPO_ROOT), **overrides})
    return parser


def build_network(parser: ConfigParser, variant: str) -> nn.Module:
    """The config's plain ``network_def``, with the CPU pass for the ``cpu`` variant."""
    return optimize_for_cpu(parser.get_parsed_content("network_def"), enabled=variant == "cpu")


def _summary_ms(seconds: list[float]) -> dict[str, float]:
    return {"median": 1000 * statistics.median(seconds), "min": 1000 * min(seconds), "max": 1000 * max(seconds)}


def _timed(fn: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure_forward(name: str, variant: str, args: argparse.Namespace) -> Result:
    """Forward passes at 1 x C x S^3 of the network as the BraTS overlay configures it: latency, MACs, memory."""
    parser = config_parser(name, LARGE_INPUT_OVERLAY)
    model = build_network(parser, variant).eval()
    x = torch.randn(1, parser["in_channels"], args.size, args.size, args.size)
    gc.collect()
    baseline_rss = psutil.Process().memory_info().rss
    reset = reset_peak_rss()
    with torch.inference_mode():
        seconds = _timed(lambda: model(x), args.repeats, args.warmup)
    peak_rss = peak_rss_bytes()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:  # after the memory measurement
        model(x)
    with torch.inference_mode(), LiveTensorMemory() as tensors:
        model(x)
    macs = counter.get_total_flops() / 2
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "macs": macs,
        "latency_ms": _summary_ms(seconds),
        "gflops": 2 * macs / statistics.median(seconds) / 1e9,
        "baseline_rss": baseline_rss,
        "peak_rss": peak_rss,
        "peak_rss_since_forward": reset,
        "peak_tensors": tensors.peak,
    }


def training_step(parser: ConfigParser, model: nn.Module) -> Callable[[], None]:
    """One training step of ``model`` with ``parser``'s ``loss`` and ``optimizer`` (forward, loss, backward, step) on
    a fixed random batch of the config's shape (``batch_size`` x ``num_samples`` volumes of ``roi_size``)."""
    parser["network"] = model  # the optimizer (and an SDKT loss) take this model, not a second instance
    loss_function = parser.get_parsed_content("loss")
    optimizer = parser.get_parsed_content("optimizer")
    shape = (parser["batch_size"] * parser["num_samples"], parser["in_channels"], *parser["roi_size"])
    image = torch.randn(shape)
    label = torch.randint(0, parser["num_label_classes"], (shape[0], 1, *shape[2:])).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_function(model(image), label).backward()
        optimizer.step()

    return step


def measure_training_step(name: str, variant: str, args: argparse.Namespace) -> Result:
    """Median time of one training step of ``train.json``'s network, loss and optimizer on a random batch."""
    torch.manual_seed(0)
    parser = config_parser(name)
    step = training_step(parser, build_network(parser, variant).train())
    shape = (parser["batch_size"] * parser["num_samples"], parser["in_channels"], *parser["roi_size"])
    seconds = _timed(step, args.train_steps, 3)
    with FlopCounterMode(display=False) as counter:
        step()
    return {
        "batch": list(shape),
        "step_ms": _summary_ms(seconds),
        "step_gflops": counter.get_total_flops() / statistics.median(seconds) / 1e9,
    }


def measure_cases(name: str, variant: str, args: argparse.Namespace) -> Result:
    """Median sliding-window time per hippocampus case with ``inference.json``'s preprocessing and inferer."""
    dataset = json.loads((args.dataset_dir / "dataset.json").read_text())
    images = [str(args.dataset_dir / case["image"]) for case in dataset["training"][: args.num_cases]]
    parser = config_parser(name, base="inference.json")
    model = build_network(parser, variant).eval()
    parser["network"] = model  # the preprocessing reads @network, which would apply the CPU pass to `model` in place
    preprocessing = parser.get_parsed_content("preprocessing")
    inferer = parser.get_parsed_content("sw_inferer")
    volumes = [preprocessing({"image": image})["image"].as_tensor()[None] for image in images]
    with torch.inference_mode():
        inferer(volumes[0], model)  # warm-up
        seconds = []
        for volume in volumes:
            start = time.perf_counter()
            inferer(volume, model)
            seconds.append(time.perf_counter() - start)
    return {"case_ms": 1000 * statistics.median(seconds), "cases": len(seconds)}


def measure_epoch(name: str, args: argparse.Namespace) -> Result:
    """Seconds of one training epoch of ``train.json`` (+ overlay) through its own trainer and data pipeline."""
    from ignite.engine import Events

    with tempfile.TemporaryDirectory() as work_dir:
        parser = config_parser(
            name,
            dataset_dir=str(args.dataset_dir),
            ckpt_dir=work_dir,
            output_dir=work_dir,
            epochs=1,
            val_interval=1000,
            num_train_cases=args.epoch_cases,
            num_val_cases=1,
            **({} if args.epoch_workers is None else {"num_workers": args.epoch_workers}),
        )
        parser.get_parsed_content("initialize")
        trainer = parser.get_parsed_content("train#trainer")
        marks: dict[str, float] = {}
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda: marks.setdefault("start", time.perf_counter()))
        trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda: marks.__setitem__("end", time.perf_counter()))
        trainer.run()
        return {
            "epoch_s": marks["end"] - marks["start"],
            "iterations": trainer.state.iteration,
            "cases": len(parser.get_parsed_content("train_datalist")),
            "num_workers": parser.get_parsed_content("num_workers"),
            "cpu_kernels": bool(parser.get_parsed_content("cpu_kernels")),
        }


def machine_peak_gflops(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Median GFLOP/s of an ``n`` x ``n`` float32 matmul on ``threads`` threads: what these cores can reach."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = _timed(lambda: torch.mm(a, b), repeats, 2)
    return 2 * n**3 / statistics.median(seconds) / 1e9


def measure(name: str, variant: str, args: argparse.Namespace) -> Result:
    """All measurements of one (network, variant), meant for a fresh worker process; the forward pass first, so that
    peak RSS is that of inference at S^3 alone."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    register_flop_formulas()
    try:
        result = {"status": "ok", **measure_forward(name, variant, args)}
        result.update(measure_training_step(name, variant, args))
        if (args.dataset_dir / "dataset.json").is_file():
            result.update(measure_cases(name, variant, args))
    except OptionalImportError as e:
        return _skipped("missing optional dependency", e)
    except torch.OutOfMemoryError as e:
        return _skipped("out of memory", e)
    return result


def _skipped(reason: str, error: Exception) -> Result:
    """A skipped result whose reason fits on one table line."""
    message = str(error).strip().splitlines()
    return {"status": "skipped", "reason": f"{reason}: {type(error).__name__}: {message[0] if message else ''}"}


def _worker_command(args: argparse.Namespace, *worker: str) -> list[str]:
    command = [sys.executable, os.path.abspath(__file__), *worker, "--threads", str(args.threads)]
    command += ["--size", str(args.size), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    command += ["--train-steps", str(args.train_steps), "--num-cases", str(args.num_cases)]
    command += ["--dataset-dir", str(args.dataset_dir)]
    if args.epoch_cases is not None:
        command += ["--epoch-cases", str(args.epoch_cases)]
    if args.epoch_workers is not None:
        command += ["--epoch-workers", str(args.epoch_workers)]
    return command


def run_worker(args: argparse.Namespace, *worker: str) -> Result:
    """Run one measurement in a fresh subprocess; a timeout or an OOM kill becomes a skipped result."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(
            _worker_command(args, *worker), capture_output=True, text=True, timeout=args.max_seconds, env=env
        )
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "reason": f"exceeded the time budget (--max-seconds {args.max_seconds:g})"}
    if proc.returncode == -signal.SIGKILL:
        return {"status": "skipped", "reason": "worker killed by SIGKILL (out of memory)"}
    if proc.returncode != 0:
        raise RuntimeError(f"worker {worker} failed with exit status {proc.returncode}:\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"worker {worker} reported no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def combine_rounds(rounds: list[Result]) -> Result:
    """One result from the same worker run in several rounds: the median of each measurement over the rounds (for
    timings, the median of the rounds' medians, the least minimum and the largest maximum); a skipped round wins."""
    skipped = [r for r in rounds if r["status"] != "ok"]
    if skipped or len(rounds) == 1:
        return skipped[0] if skipped else rounds[0]
    combined: Result = {}
    for key, value in rounds[0].items():
        values = [r[key] for r in rounds]
        if isinstance(value, dict) and set(value) == {"median", "min", "max"}:
            combined[key] = {
                "median": statistics.median(v["median"] for v in values),
                "min": min(v["min"] for v in values),
                "max": max(v["max"] for v in values),
            }
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            combined[key] = statistics.median(values)
        else:
            combined[key] = value
    combined["rounds"] = len(rounds)
    return combined


def _value(result: Result | None, key: str, sub: str | None = None) -> float | None:
    if result is None or result.get("status") != "ok" or key not in result:
        return None
    return result[key][sub] if sub else result[key]


def _median(result: Result | None, key: str) -> float | None:
    """The median of a timed measurement (``latency_ms``, ``step_ms``), None where it was not measured."""
    return _value(result, key, "median")


def _format(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def results_table(results: dict[str, Result], peak: float) -> list[str]:
    """One row per (network, variant): forward at S^3, memory, training step and per-case time."""
    header = ["network", "variant", "params (M)", "MACs (G)", "forward median (ms)", "forward min-max (ms)"]
    header += ["forward GFLOP/s", "% of matmul peak", "peak RSS (MiB)", "peak tensor memory (MiB)"]
    header += ["training step (ms)", "training GFLOP/s", "per case (ms)", "forward / UNet", "step / UNet", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, result in results.items():
        name, variant = key.split("+")
        if result["status"] != "ok":
            cells = [name, variant] + ["-"] * (len(header) - 3) + ["skipped: " + result["reason"].replace("|", "\\|")]
        else:
            latency = result["latency_ms"]
            unet = results.get(f"{UNET}+{variant}")
            cells = [
                name,
                variant,
                f"{result['params'] / 1e6:.3f}",
                f"{result['macs'] / 1e9:.2f}",
                f"{latency['median']:.0f}",
                f"{latency['min']:.0f}-{latency['max']:.0f}",
                f"{result['gflops']:.1f}",
                f"{100 * result['gflops'] / peak:.0f}",
                f"{result['peak_rss'] / MIB:.0f}",
                f"{result['peak_tensors'] / MIB:.0f}",
                f"{result['step_ms']['median']:.0f}",
                f"{result['step_gflops']:.1f}",
                _format(result.get("case_ms"), ".1f"),
                _format(_ratio(latency["median"], _value(unet, "latency_ms", "median")), ".2f"),
                _format(_ratio(result["step_ms"]["median"], _value(unet, "step_ms", "median")), ".2f"),
                "ok",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def epoch_table(epochs: dict[str, Result]) -> list[str]:
    lines = ["| network | training cases | iterations | data workers | CPU pass | epoch (s) | epoch / UNet |"]
    lines.append("|---|---|---|---|---|---|---|")
    unet = _value(epochs.get(UNET), "epoch_s")
    for name, r in epochs.items():
        if r["status"] != "ok":
            lines.append(f"| {name} | - | - | - | - | - | skipped: {r['reason']} |")
            continue
        ratio = _format(_ratio(r["epoch_s"], unet), ".2f")
        kernels = "yes" if r["cpu_kernels"] else "no"
        cells = [name, r["cases"], r["iterations"], r["num_workers"], kernels, f"{r['epoch_s']:.1f}", ratio]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def _target(claim: str, ratio: float | None, limit: float) -> str:
    """One target line: the measured ratio against its limit and PASS or MISS, or N/A when it was not measured."""
    if ratio is None:
        return f"- {claim}: N/A (not measured in this run)"
    return f"- {claim}: ratio {ratio:.2f} (limit {limit:g}) -> {'PASS' if ratio <= limit else 'MISS'}"


def target_lines(results: dict[str, Result], epochs: dict[str, Result], peak: float) -> list[str]:
    """The wall-clock targets of LightMedSeg with the CPU pass, against the peers with the same pass."""
    ours, unet, velox = (results.get(f"{n}+cpu") for n in (OURS, UNET, VELOXSEG))
    rss = {k: _value(r, "peak_rss") for k, r in results.items() if k.endswith("+cpu")}
    peers_rss = [v for k, v in rss.items() if v is not None and not k.startswith(OURS)]
    forward = _median(ours, "latency_ms")
    return [
        _target("training step <= 0.5 x UNet's", _ratio(_median(ours, "step_ms"), _median(unet, "step_ms")), 0.5),
        _target(
            "one training epoch of train.json <= 0.5 x UNet's",
            _ratio(_value(epochs.get(OURS), "epoch_s"), _value(epochs.get(UNET), "epoch_s")),
            0.5,
        ),
        _target("forward at 128^3 <= VeloxSeg's", _ratio(forward, _median(velox, "latency_ms")), 1.0),
        _target("forward at 128^3 <= 0.35 x UNet's", _ratio(forward, _median(unet, "latency_ms")), 0.35),
        _target("per hippocampus case <= VeloxSeg's", _ratio(_value(ours, "case_ms"), _value(velox, "case_ms")), 1.0),
        _target(
            "peak RSS at 128^3 the lowest of all networks (ratio to the lowest peer)",
            _ratio(rss.get(f"{OURS}+cpu"), min(peers_rss) if peers_rss else None),
            1.0,
        ),
        _target(
            "forward throughput >= 30 % of the matmul peak (ratio: 0.30 x peak / achieved)",
            _ratio(0.30 * peak, _value(ours, "gflops")),
            1.0,
        ),
    ]


def write_report(
    path: Path,
    args: argparse.Namespace,
    machine: dict[str, str],
    peak: float,
    results: dict[str, Result],
    epochs: dict[str, Result],
) -> None:
    """Write the markdown report: machine, setup, the tables and the targets; the other scripts' sections stay."""
    train = json.loads((CONFIGS / "train.json").read_text())
    roi = "x".join(map(str, train["roi_size"]))
    lines = ["# LightMedSeg benchmarks", "", "Written by `scripts/benchmark.py`; rerun the command below to update it."]
    lines += ["", "## Machine", ""] + [f"- {key}: {value}" for key, value in machine.items()]
    lines += [f"- Measured peak: {peak:.0f} GFLOP/s (median of a 2048 x 2048 fp32 matmul on {args.threads} threads)"]
    lines += [
        "",
        "## Setup",
        "",
        "- Networks: the `network_def` that ships, `configs/train.json` for LightMedSeg and "
        "`configs/networks/<name>.json` on top of it for each peer; each (network, variant) in a fresh worker "
        f"process on {args.threads} threads, in {args.rounds} round(s) over all networks in turn, each figure the "
        "median over the rounds (a slow spell of a shared machine then hits every network alike). `plain`: the "
        "modules as written; `cpu`: after "
        "`lightmedseg_bundle.cpu.optimize_for_cpu` (oneDNN convolutions, 1x1x1 and 2x2x2 convolutions as matmuls, "
        "convolutions to one output channel as depthwise ones and a channel sum at inference, fused SiLU, 2x "
        "trilinear upsampling as in-place lerps at inference, channels-last layout), which the configs apply on a "
        "CPU (`cpu_kernels`).",
        f"- Forward: 1 x 4 x {args.size}^3, the network as `configs/tasks/brats.json` configures it (4 modalities, "
        f"3 regions; LightMedSeg with its trilinear head there); median and range of {args.repeats} passes after "
        f"{args.warmup} warm-up, `eval()` under `torch.inference_mode()`. MACs: `FlopCounterMode` / 2 (convolutions, "
        "matmuls, attention). GFLOP/s: 2 x MACs / median latency.",
        "- Peak RSS: the worker's `VmHWM`, reset just before the first forward pass (runtime, weights and input "
        "included). Peak tensor memory: the most tensor storage alive at once in one forward pass.",
        f"- Training step: `train.json`'s network (LightMedSeg with the `refined` head), `loss` and `optimizer` on a "
        f"batch of {train['batch_size']} x 1 x {roi}; forward + loss + backward + step, median of {args.train_steps} "
        "steps after 3 warm-up.",
        f"- Per case: `inference.json`'s preprocessing and sliding window ({roi}, sw_batch_size "
        f"{train['sw_batch_size']}) on the first {args.num_cases} hippocampus cases; median per case, preprocessing "
        "excluded.",
        "",
        "## Results",
        "",
        *results_table(results, peak),
        "",
    ]
    if epochs:
        workers = "as the config sets it" if args.epoch_workers is None else str(args.epoch_workers)
        lines += [
            "## One training epoch of train.json",
            "",
            "`configs/train.json` (+ the peer's overlay) run through its own `SupervisedTrainer` on the hippocampus "
            f"training split, data loading and augmentation included, data workers {workers}; time from the "
            "epoch's start to its last iteration (dataset caching before it and validation after it excluded).",
            "",
            *epoch_table(epochs),
            "",
        ]
    lines += ["## Targets (LightMedSeg, CPU pass, against the peers with the same pass)", ""]
    lines += [*target_lines(results, epochs, peak), ""]
    for section in marked_sections(path.read_text() if path.is_file() else ""):
        lines += [section, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--size", type=int, default=128, help="edge of the cubic 4-channel input (multiple of 32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forward passes")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forward passes before timing")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--num-cases", type=int, default=10, help="hippocampus cases timed per network")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"subset of: {', '.join(NETWORKS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="plain, cpu or both")
    parser.add_argument("--epoch", action="store_true", help="also time one training epoch of train.json")
    parser.add_argument("--epoch-cases", type=int, help="training cases of the epoch (default: the whole split)")
    parser.add_argument("--epoch-workers", type=int, help="data workers of the epoch (default: train.json's)")
    parser.add_argument("--dataset-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "msd_hippocampus")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--max-seconds", type=float, default=900.0, help="time budget per worker process")
    parser.add_argument("--rounds", type=int, default=1, help="run every worker this many times, round-robin")
    parser.add_argument("--worker", nargs=2, metavar=("NETWORK", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--epoch-worker", choices=tuple(NETWORKS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.size < 32 or args.size % 32:
        parser.error(f"--size must be a multiple of 32 and at least 32, got {args.size}")
    if min(args.repeats, args.train_steps, args.num_cases, args.threads, args.rounds) < 1 or args.warmup < 0:
        parser.error("--repeats, --train-steps, --num-cases, --threads and --rounds must be positive, --warmup >= 0")
    for option, choices in (("networks", NETWORKS), ("variants", VARIANTS)):
        chosen = [n.strip() for n in getattr(args, option).split(",") if n.strip()]
        unknown = [n for n in chosen if n not in choices]
        if unknown or not chosen:
            parser.error(f"unknown {option} {', '.join(unknown) or '(none given)'}; choose from: {', '.join(choices)}")
        setattr(args, option, chosen)
    if args.epoch and not (args.dataset_dir / "dataset.json").is_file():
        parser.error(f"--epoch needs the hippocampus data: no dataset.json in {args.dataset_dir}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every (network, variant) and the epochs one worker process at a time, then write the report."""
    args = parse_args(argv)
    if args.worker:
        print(RESULT_PREFIX + json.dumps(measure(*args.worker, args)), flush=True)
        return
    if args.epoch_worker:
        torch.set_num_threads(args.threads)
        print(RESULT_PREFIX + json.dumps({"status": "ok", **measure_epoch(args.epoch_worker, args)}), flush=True)
        return

    machine = machine_info("cpu")
    peak = machine_peak_gflops(args.threads)
    print(f"matmul peak: {peak:.0f} GFLOP/s on {args.threads} threads", flush=True)
    rounds: dict[str, list[Result]] = {}
    epoch_rounds: dict[str, list[Result]] = {}
    for round_number in range(1, args.rounds + 1):  # round-robin, so that a slow spell of the machine hits all alike
        for name in args.networks:
            for variant in args.variants:
                r = run_worker(args, "--worker", name, variant)
                rounds.setdefault(f"{name}+{variant}", []).append(r)
                if r["status"] == "ok":
                    print(
                        f"[round {round_number}, {name} {variant}] forward {r['latency_ms']['median']:.0f} ms "
                        f"({r['gflops']:.1f} GFLOP/s), peak RSS {r['peak_rss'] / MIB:.0f} MiB, training step "
                        f"{r['step_ms']['median']:.0f} ms"
                        + (f", {r['case_ms']:.1f} ms per case" if "case_ms" in r else ""),
                        flush=True,
                    )
                else:
                    print(f"[round {round_number}, {name} {variant}] skipped: {r['reason']}", flush=True)
        for name in args.networks if args.epoch else ():
            epoch_rounds.setdefault(name, []).append(r := run_worker(args, "--epoch-worker", name))
            print(f"[round {round_number}, {name}] epoch: {r.get('epoch_s', float('nan')):.1f} s {r.get('reason', '')}")
    results = {key: combine_rounds(value) for key, value in rounds.items()}
    epochs = {key: combine_rounds(value) for key, value in epoch_rounds.items()}
    write_report(args.output, args, machine, peak, results, epochs)
    print("\n".join(["", "Targets:", *target_lines(results, epochs, peak)]))
    print(f"Report written to {args.output}")


if __name__ == "__main__":
    main()
