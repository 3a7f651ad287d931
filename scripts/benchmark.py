"""
Benchmark LightMedSeg against MONAI segmentation networks and write the results as a markdown table.

Every model is measured in one run, on the same input (by default a single 4-channel 128^3 fp32 volume):
parameters, MACs, forward latency and peak memory. Each model is measured in a fresh worker subprocess
(this script re-invoked with ``--worker MODEL``), so that one model's allocator state cannot affect another's.

- MACs: FLOPs counted by :class:`torch.utils.flop_counter.FlopCounterMode` during one forward pass, divided by 2.
  The counter covers convolutions, transposed convolutions, matrix multiplications and attention; normalisation,
  activations and element-wise operations are not counted.
- Latency: median, min and max over ``--repeats`` timed forward passes after ``--warmup`` untimed ones, with the
  model in ``eval()`` mode under :func:`torch.inference_mode`, synchronising around each pass on CUDA.
- Peak memory: the worker's peak resident set size (``VmHWM`` from ``/proc/self/status``), reset through
  ``/proc/self/clear_refs`` just before the first forward pass, together with its increase over the RSS measured
  right before that pass (after imports, model construction and input allocation). ``ru_maxrss`` is not used on
  Linux because a child process inherits its parent's ``ru_maxrss`` across fork/exec; it is the fallback where
  ``/proc`` is not available. On CUDA, :func:`torch.cuda.max_memory_allocated` is reported as well and is the
  memory used for the ratios and targets.
- Peak tensor memory: the most bytes of tensor storage alive at once during one more forward pass (input and weights
  excluded), tracked by :class:`LiveTensorMemory`. Unlike RSS it leaves out the runtime's own memory (oneDNN
  primitive caches and scratchpads, allocator slack), so it shows what the network's activations need.

A model is skipped, with the reason printed and tabled, when it cannot be constructed for the requested size, lacks
an optional dependency (UNETR and SwinUNETR need ``einops``), runs out of memory, or its worker exceeds
``--max-seconds``. Any other failure is an error: nothing is written and the script exits non-zero. Missed targets
are reported as MISS and do not change the exit status.

Usage::

    python scripts/benchmark.py
    python scripts/benchmark.py --size 96 --repeats 10 --models lightmedseg_ghost,unet,segresnet
    python scripts/benchmark.py --device cpu --output /tmp/benchmarks.md --max-seconds 300
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import monai
import psutil
import torch
from monai.networks.nets import UNETR, SegResNet, SwinUNETR, UNet
from monai.utils import OptionalImportError
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from lightmedseg_bundle.networks import (
    HRMedSeg,
    LightMedSeg,
    RefineFormer3D,
    SegMaFormer,
    VeloxSeg,
)

ModelFactory = Callable[[int, int, int], nn.Module]
"""Builds a network from ``(size, in_channels, out_channels)``, ``size`` being the cubic input edge length."""
Result = dict[str, Any]
"""A worker's JSON result: ``status`` ``"ok"`` with the measurements, or ``"skipped"`` with a ``reason``."""


def _lightmedseg_ghost(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return LightMedSeg(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, conv_type="ghost")


def _lightmedseg_standard(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return LightMedSeg(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, conv_type="standard")


def _unet(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return UNet(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=(16, 32, 64, 128, 256),
        strides=(2, 2, 2, 2),
        num_res_units=2,
    )


def _segresnet(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return SegResNet(spatial_dims=3, init_filters=16, in_channels=in_channels, out_channels=out_channels)


def _unetr(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return UNETR(in_channels=in_channels, out_channels=out_channels, img_size=size, spatial_dims=3)


def _swinunetr(size: int, in_channels: int, out_channels: int) -> nn.Module:
    # MONAI 1.6 takes no ``img_size``; the input edge must be divisible by patch_size ** 5 = 32 instead, and be
    # at least 64 so that the instance norm of the 1/32-resolution bottleneck sees more than one voxel.
    if size % 32 or size < 64:
        raise ValueError(f"SwinUNETR needs an input size that is a multiple of 32 and at least 64, got {size}.")
    return SwinUNETR(in_channels=in_channels, out_channels=out_channels, feature_size=48, spatial_dims=3)


def _refineformer3d(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return RefineFormer3D(spatial_dims=3, in_channels=in_channels, out_channels=out_channels)


def _segmaformer(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return SegMaFormer(spatial_dims=3, in_channels=in_channels, out_channels=out_channels)


def _veloxseg(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return VeloxSeg(spatial_dims=3, in_channels=in_channels, out_channels=out_channels)


def _hrmedseg(size: int, in_channels: int, out_channels: int) -> nn.Module:
    return HRMedSeg(spatial_dims=3, in_channels=in_channels, out_channels=out_channels)


MODELS: dict[str, ModelFactory] = {
    "lightmedseg_ghost": _lightmedseg_ghost,
    "lightmedseg_standard": _lightmedseg_standard,
    "refineformer3d": _refineformer3d,
    "segmaformer": _segmaformer,
    "veloxseg": _veloxseg,
    "hrmedseg": _hrmedseg,
    "unet": _unet,
    "segresnet": _segresnet,
    "unetr": _unetr,
    "swinunetr": _swinunetr,
}
"""The benchmarked networks by name: LightMedSeg, the lightweight networks of the bundle (their defaults, as in
``configs/networks/<name>.json``) and MONAI's reference networks (MONAI's defaults except where set above)."""

LIGHTMEDSEG_PREFIX = "lightmedseg"
SEGRESNET_LATENCY_FRACTION = 0.15
RESULT_PREFIX = "BENCHMARK_RESULT "
MIB = 2**20
KEPT_SECTIONS = ("runtimes", "comparison")
"""Marked sections of the report that other scripts write (benchmark_runtimes.py, compare_networks.py): kept."""


def section_markers(name: str) -> tuple[str, str]:
    """The HTML comments that delimit the report section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Replace the section ``name`` of ``path`` by ``lines`` (which start and end with its markers), or append
    it; the rest of the file is kept."""
    start, end = section_markers(name)
    text = path.read_text() if path.is_file() else "# LightMedSeg benchmarks\n"
    block = "\n".join(lines)
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc_status_bytes(field: str) -> int | None:
    """Return a ``kB`` field of ``/proc/self/status`` (e.g. ``VmHWM``) in bytes, or None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; return whether that was possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Return the peak RSS of this process: ``VmHWM`` where ``/proc`` has it, otherwise ``ru_maxrss``."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max_rss if sys.platform == "darwin" else max_rss * 1024


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LiveTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage created under this mode and alive at once (``peak``).

    Every op's output storage is counted when it is created and uncounted when it is freed (a ``weakref.finalize``
    on the storage, whose Python object lives as long as the storage); views share their base's storage.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._counted: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._counted.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if not isinstance(item, torch.Tensor) or item.device.type == "meta":
                continue
            storage = item.untyped_storage()
            key = storage.data_ptr()
            if key in self._counted or storage.nbytes() == 0:
                continue
            self._counted.add(key)
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def _skipped(reason: str, error: Exception) -> Result:
    """A skipped result whose reason fits on one table line."""
    message = str(error).strip().splitlines()
    return {"status": "skipped", "reason": f"{reason}: {type(error).__name__}: {message[0] if message else ''}"}


def measure(
    name: str, size: int, in_channels: int, out_channels: int, repeats: int, warmup: int, device: str
) -> Result:
    """
    Measure one model in the current process; meant to run in a fresh worker process.

    Returns a JSON-serialisable dict with ``status`` ``"ok"`` and the measurements, or ``status`` ``"skipped"``
    and a ``reason`` when the model cannot be built for this input, lacks an optional dependency or runs out of
    memory.
    """
    torch.manual_seed(0)
    dev = torch.device(device)
    try:
        model = MODELS[name](size, in_channels, out_channels)
    except OptionalImportError as e:
        return _skipped("missing optional dependency", e)
    except Exception as e:
        return _skipped("construction error", e)
    try:
        model = model.to(dev).eval()
        x = torch.randn(1, in_channels, size, size, size, device=dev)
        params = sum(p.numel() for p in model.parameters())

        gc.collect()
        baseline_rss = psutil.Process().memory_info().rss
        peak_rss_since_forward = reset_peak_rss()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)

        latencies_ms = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            for _ in range(repeats):
                _synchronize(dev)
                start = time.perf_counter()
                model(x)
                _synchronize(dev)
                latencies_ms.append((time.perf_counter() - start) * 1000.0)
        peak_rss = peak_rss_bytes()
        peak_cuda = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None

        # counted last, so that the counter's own overhead does not enter the memory measurement above
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(x)
        with torch.inference_mode(), LiveTensorMemory() as tensors:
            model(x)
    except OptionalImportError as e:  # MONAI imports some dependencies lazily, e.g. einops in SwinUNETR.forward
        return _skipped("missing optional dependency", e)
    except torch.OutOfMemoryError as e:
        return _skipped("out of memory", e)
    return {
        "status": "ok",
        "params": params,
        "macs": counter.get_total_flops() / 2,
        "latency_ms": {
            "median": statistics.median(latencies_ms),
            "min": min(latencies_ms),
            "max": max(latencies_ms),
        },
        "baseline_rss": baseline_rss,
        "peak_rss": peak_rss,
        "peak_rss_since_forward": peak_rss_since_forward,
        "peak_cuda": peak_cuda,
        "peak_tensors": tensors.peak,
    }


def run_worker(name: str, args: argparse.Namespace) -> Result:
    """Measure ``name`` in a fresh subprocess; a timeout or a kill by the OOM killer becomes a skipped result."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        name,
        "--size",
        str(args.size),
        "--in-channels",
        str(args.in_channels),
        "--out-channels",
        str(args.out_channels),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=args.max_seconds)
    except subprocess.TimeoutExpired:
        return {"status": "skipped", "reason": f"exceeded the time budget (--max-seconds {args.max_seconds:g})"}
    if proc.returncode == -signal.SIGKILL:
        return {"status": "skipped", "reason": "worker killed by SIGKILL (out of memory)"}
    if proc.returncode != 0:
        raise RuntimeError(f"worker for {name!r} failed with exit status {proc.returncode}:\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(f"worker for {name!r} reported no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def memory_bytes(result: Result) -> int:
    """The memory figure that ratios and targets use: peak CUDA allocation on GPU, peak RSS on CPU."""
    return result["peak_cuda"] if result["peak_cuda"] is not None else result["peak_rss"]


def _ratio(results: dict[str, Result], name: str, reference: str, value: Callable[[Result], float]) -> float | None:
    ours, ref = results[name], results.get(reference)
    if ours["status"] != "ok" or ref is None or ref["status"] != "ok":
        return None
    return value(ours) / value(ref)


def _median_latency(result: Result) -> float:
    return result["latency_ms"]["median"]


def machine_info(device: str) -> dict[str, str]:
    """Describe the machine, software and command line of this run for the report header."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{avg:.2f}" for avg in os.getloadavg())
    return {
        "Date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "Command": f"`{shlex.join(sys.orig_argv)}`",
        "CPU": f"{cpu} ({os.cpu_count()} logical cores, {usable} usable by this process)",
        "torch threads": str(torch.get_num_threads()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "GPU": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "Device": device,
        "Software": f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}",
        "Load average (1/5/15 min) at start": load,
    }


def _format(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(results: dict[str, Result], cuda: bool) -> list[str]:
    """Render the per-model results as markdown table lines."""
    mem = "peak CUDA alloc" if cuda else "peak RSS"
    header = ["model", "params (M)", "MACs (G)", "latency median (ms)", "latency min (ms)", "latency max (ms)"]
    header += ["peak RSS (MiB)", "RSS increase in forward (MiB)", "peak tensor memory (MiB)"]
    header += ["peak CUDA alloc (MiB)"] if cuda else []
    header += ["latency / UNet", "latency / SegResNet", f"{mem} / UNet", f"{mem} / SegResNet", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        if result["status"] != "ok":
            cells = [name] + ["-"] * (len(header) - 2) + ["skipped: " + result["reason"].replace("|", "\\|")]
        else:
            latency = result["latency_ms"]
            cells = [
                name,
                f"{result['params'] / 1e6:.3f}",
                f"{result['macs'] / 1e9:.3f}",
                f"{latency['median']:.1f}",
                f"{latency['min']:.1f}",
                f"{latency['max']:.1f}",
                f"{result['peak_rss'] / MIB:.0f}",
                f"{(result['peak_rss'] - result['baseline_rss']) / MIB:.0f}",
                f"{result['peak_tensors'] / MIB:.0f}",
            ]
            cells += [f"{result['peak_cuda'] / MIB:.0f}"] if cuda else []
            cells += [
                _format(_ratio(results, name, reference, value), ".2f")
                for value in (_median_latency, memory_bytes)
                for reference in ("unet", "segresnet")
            ]
            cells.append("ok")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _target(claim: str, ratio: float | None, limit: float, missing: str) -> str:
    """One target line: the measured ratio against its limit and PASS or MISS, or N/A when it was not measured."""
    if ratio is None:
        return f"- {claim}: N/A ({missing} not measured)"
    return f"- {claim}: ratio {ratio:.2f} (limit {limit:g}) -> {'PASS' if ratio <= limit else 'MISS'}"


def target_lines(results: dict[str, Result], cuda: bool) -> list[str]:
    """Evaluate the LightMedSeg targets for every LightMedSeg variant measured in this run."""
    measured = {name: result for name, result in results.items() if result["status"] == "ok"}
    ours = [name for name in measured if name.startswith(LIGHTMEDSEG_PREFIX)]
    peers = {name: memory_bytes(result) for name, result in measured.items() if name not in ours}
    lowest_peer = min(peers, key=peers.__getitem__) if peers else None
    memory = "peak CUDA alloc" if cuda else "peak RSS"
    if not ours:
        return ["- No LightMedSeg variant was measured; no target could be evaluated."]
    lines = []
    for name in ours:
        lines += [
            _target(
                f"{name} median latency <= UNet median latency",
                _ratio(results, name, "unet", _median_latency),
                1.0,
                "unet",
            ),
            _target(
                f"{name} median latency <= {SEGRESNET_LATENCY_FRACTION:g} x SegResNet median latency",
                _ratio(results, name, "segresnet", _median_latency),
                SEGRESNET_LATENCY_FRACTION,
                "segresnet",
            ),
            _target(
                f"{name} has the lowest {memory} of all measured models (ratio to the lowest peer, {lowest_peer})",
                _ratio(results, name, lowest_peer, memory_bytes) if lowest_peer else None,
                1.0,
                "no peer",
            ),
        ]
    return lines


def write_report(path: Path, args: argparse.Namespace, machine: dict[str, str], results: dict[str, Result]) -> None:
    """Write the markdown report: machine header, setup, results table and targets."""
    cuda = args.device == "cuda"
    size = args.size
    not_reset = [name for name, r in results.items() if r["status"] == "ok" and not r["peak_rss_since_forward"]]
    lines = ["# LightMedSeg benchmarks", "", "Written by `scripts/benchmark.py`; rerun the command below to update it."]
    lines += [""]
    lines += ["## Machine", ""] + [f"- {key}: {value}" for key, value in machine.items()] + [""]
    lines += [
        "## Setup",
        "",
        f"- Input: 1 x {args.in_channels} x {size} x {size} x {size}, float32, batch 1; {args.out_channels} output "
        "channels; the same input shape for every model, each measured in a fresh worker process.",
        f"- Latency: median/min/max of {args.repeats} timed forward passes after {args.warmup} warm-up passes, "
        "`model.eval()` under `torch.inference_mode()`"
        + (", with `torch.cuda.synchronize()` around each pass." if cuda else "."),
        "- MACs: FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` / 2 (convolutions, transposed "
        "convolutions, matmuls and attention; normalisation, activations and element-wise ops are not counted).",
        "- Peak RSS: peak resident set size of the worker (`VmHWM`), reset just before the first forward pass, so it "
        "is the peak during warm-up and timed passes; it includes the Python/torch runtime, weights and input. "
        "RSS increase in forward: peak RSS minus the RSS right before the first forward pass.",
        "- Peak tensor memory: the most tensor storage alive at once during one forward pass (input and weights "
        "excluded; `LiveTensorMemory`): what the activations need, without the runtime's caches and allocator slack "
        "that RSS includes.",
    ]
    if not_reset:
        lines.append(
            f"- The peak-RSS mark could not be reset for {', '.join(not_reset)}: their peak RSS covers the whole "
            "worker process (imports and construction included)."
        )
    if cuda:
        lines.append("- Peak CUDA alloc: `torch.cuda.max_memory_allocated()` over the forward passes; used for ratios.")
    lines += ["", "## Results", "", *results_table(results, cuda), ""]
    lines += ["## Targets", "", *target_lines(results, cuda), ""]
    old = path.read_text() if path.is_file() else ""
    for name in KEPT_SECTIONS:
        start, end = section_markers(name)
        if start in old and end in old:
            lines += [start + old.split(start, 1)[1].split(end, 1)[0] + end, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--size", type=int, default=128, help="edge length of the cubic input (multiple of 16, >= 32)")
    parser.add_argument("--in-channels", type=int, default=4)
    parser.add_argument("--out-channels", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5, help="number of timed forward passes")
    parser.add_argument("--warmup", type=int, default=2, help="number of untimed forward passes before timing")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of: {', '.join(MODELS)}")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="time budget per model worker process, imports included"
    )
    parser.add_argument("--worker", choices=tuple(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.size < 32 or args.size % 16:
        # multiples of 16 for LightMedSeg; at 16, instance norm fails on the 1-voxel bottleneck of UNet
        parser.error(f"--size must be a multiple of 16 and at least 32, got {args.size}")
    if args.repeats < 1 or args.warmup < 0 or args.in_channels < 1 or args.out_channels < 1 or args.max_seconds <= 0:
        parser.error("--repeats, --in-channels, --out-channels and --max-seconds must be positive, --warmup >= 0")
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in args.models if name not in MODELS]
    if unknown or not args.models:
        parser.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(MODELS)}")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was requested but CUDA is not available")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure the selected models one worker process at a time and write the report."""
    args = parse_args(argv)
    if args.worker:
        result = measure(
            args.worker, args.size, args.in_channels, args.out_channels, args.repeats, args.warmup, args.device
        )
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return

    machine = machine_info(args.device)
    results: dict[str, Result] = {}
    for name in args.models:
        print(f"[{name}] measuring on {args.device} ...", flush=True)
        results[name] = result = run_worker(name, args)
        if result["status"] == "ok":
            print(
                f"[{name}] {result['params'] / 1e6:.3f} M params, {result['macs'] / 1e9:.3f} GMACs, "
                f"median {result['latency_ms']['median']:.1f} ms, peak RSS {result['peak_rss'] / MIB:.0f} MiB"
                + (f", peak CUDA {result['peak_cuda'] / MIB:.0f} MiB" if result["peak_cuda"] is not None else ""),
                flush=True,
            )
        else:
            print(f"[{name}] skipped: {result['reason']}", flush=True)
    write_report(args.output, args, machine, results)
    print("\n".join(["", "Targets:", *target_lines(results, args.device == "cuda")]))
    print(f"Report written to {args.output}")


if __name__ == "__main__":
    main()
