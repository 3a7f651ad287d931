"""
Where the shipped LightMedSeg's training step goes, component by component, and what a step without those
components would cost against UNet's: the ``components`` section of ``docs/benchmarks.md``.

The training step is ``scripts/benchmark.py``'s (``train.json``'s network, ``loss`` and ``optimizer``, a batch of
2 x 1 x 48x64x48, forward + loss + backward + step, the CPU pass on). Each row times the shipped network with one
component taken out: the ``refined`` head becomes the ``trilinear`` one (a config value), and the other components are
replaced by stand-ins of the same output shape that cost nothing (fixed anchors at the volume's centre, the stem
features and a constant texture map for the LSPM, an identity for encoder stage 1, the transposed convolution plus the
skip for decoder stage 4). The stand-ins exist for timing only: such a network is not LightMedSeg and is never trained.
The last rows take all of them out at once, and time UNet (``configs/networks/unet.json``) for the ratio. All variants
are built in one process and stepped in turn, round-robin, so that a slow spell of the machine hits them alike; each
figure is the median over ``--steps`` rounds.

Usage::

    python scripts/benchmark_components.py                       # rewrites the section in docs/benchmarks.md
    python scripts/benchmark_components.py --steps 5 --output /tmp/bench.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from benchmark import config_parser, training_step  # scripts/benchmark.py, beside this script
from torch import nn

from lightmedseg_bundle.benchmarking import machine_info, section_markers, write_section
from lightmedseg_bundle.cpu import optimize_for_cpu

SECTION = "components"


class FixedAnchors(nn.Module):
    """Stand-in for the global anchor detector: every anchor at the volume's centre."""

    def __init__(self, num_anchors: int):
        super().__init__()
        self.num_anchors = num_anchors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_full((x.shape[0], self.num_anchors, 3), 0.5)


class PassThroughPrior(nn.Module):
    """Stand-in for the LSPM: the stem features unchanged and a constant texture map."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x.new_full((x.shape[0], 1, *x.shape[2:]), 0.5)


class IdentityStage(nn.Module):
    """Stand-in for an encoder stage that keeps its width: its input unchanged."""

    def forward(self, x: torch.Tensor, anchors: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        return x


class UpsampleAndSkip(nn.Module):
    """Stand-in for a decoder stage: its own transposed convolution plus the skip, nothing else."""

    def __init__(self, up: nn.Module):
        super().__init__()
        self.up = up

    def forward(self, x: torch.Tensor, skip: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        return self.up(x) + skip


def _without_anchor_detector(net: nn.Module) -> None:
    net.anchor_detector = FixedAnchors(net.anchor_detector.num_anchors)


def _without_lspm(net: nn.Module) -> None:
    net.structural_prior = PassThroughPrior()


def _without_encoder_stage_1(net: nn.Module) -> None:
    net.encoder[0] = IdentityStage()


def _without_decoder_stage_4(net: nn.Module) -> None:
    net.decoder[3] = UpsampleAndSkip(net.decoder[3].up)


#: each row: what is taken out, the network_def overrides, and the stand-ins put in
REMOVALS: dict[str, tuple[dict[str, str], tuple[Callable[[nn.Module], None], ...]]] = {
    "nothing (the shipped network)": ({}, ()),
    "full-resolution refinement (`refined` -> `trilinear` head)": ({"network_def#head_upsample": "trilinear"}, ()),
    "LSPM (Sec. 3.3)": ({}, (_without_lspm,)),
    "encoder stage 1 (D/2)": ({}, (_without_encoder_stage_1,)),
    "decoder stage 4 (D/2)": ({}, (_without_decoder_stage_4,)),
    "global anchor detector (Sec. 3.2)": ({}, (_without_anchor_detector,)),
}
ALL_REMOVED = "all five at once"
UNET = "UNet (`configs/networks/unet.json`), for the ratio"


def step_of(name: str, overrides: dict[str, str], stand_ins: Sequence[Callable[[nn.Module], None]]):
    """``scripts/benchmark.py``'s training step of ``name``'s network with ``overrides`` and ``stand_ins``, the CPU
    pass on (the benchmark's ``cpu`` variant)."""
    torch.manual_seed(0)
    parser = config_parser(name, **overrides)
    net = parser.get_parsed_content("network_def")
    for stand_in in stand_ins:
        stand_in(net)
    return training_step(parser, optimize_for_cpu(net).train())


def measure(steps: int, warmup: int) -> dict[str, float]:
    """Median step time (ms) of every row, the variants stepped in turn."""
    variants = {label: step_of("lightmedseg", *row) for label, row in REMOVALS.items()}
    every_stand_in = [s for _, stand_ins in REMOVALS.values() for s in stand_ins]
    trilinear = REMOVALS["full-resolution refinement (`refined` -> `trilinear` head)"][0]
    variants[ALL_REMOVED] = step_of("lightmedseg", trilinear, every_stand_in)
    variants[UNET] = step_of("unet", {}, ())
    seconds: dict[str, list[float]] = {label: [] for label in variants}
    for round_number in range(warmup + steps):
        for label, step in variants.items():
            start = time.perf_counter()
            step()
            if round_number >= warmup:
                seconds[label].append(time.perf_counter() - start)
    return {label: 1000 * statistics.median(values) for label, values in seconds.items()}


def report_lines(step_ms: dict[str, float], args: argparse.Namespace) -> list[str]:
    """The section: how it was measured, the table, and what it says about the 0.5 x UNet target."""
    start, end = section_markers(SECTION)
    machine = machine_info("cpu")
    shipped, unet = step_ms["nothing (the shipped network)"], step_ms[UNET]
    lines = [
        start,
        "## Where the shipped LightMedSeg's training step goes, by component",
        "",
        "Written by `scripts/benchmark_components.py`; rerun it to update this section.",
        "",
        f"- Date: {machine['Date']}; command: {machine['Command']}; CPU: {machine['CPU']}; {args.threads} threads; "
        f"load average at start: {machine['Load average (1/5/15 min) at start']}.",
        "- The training step of `scripts/benchmark.py` (train.json's network, loss and optimizer, batch 2 x 1 x "
        "48x64x48, CPU pass on) with one component at a time taken out: the `refined` head replaced by the "
        "`trilinear` one, the others by stand-ins of the same output shape that cost nothing (timing only: that "
        f"network is not LightMedSeg). All rows built in one process and stepped in turn; median of {args.steps} "
        f"rounds after {args.warmup} warm-up.",
        "",
        "| taken out | step (ms) | saved (ms) | share of the shipped step | step / UNet's |",
        "|---|---|---|---|---|",
    ]
    for label, ms in step_ms.items():
        saved = "" if label == UNET else f"{shipped - ms:.1f}"
        share = "" if label == UNET else f"{(shipped - ms) / shipped:.0%}"
        lines.append(f"| {label} | {ms:.1f} | {saved} | {share} | {ms / unet:.2f} |")
    lines += [
        "",
        f"The shipped step is {shipped / unet:.2f} x UNet's here; the target is 0.5. Only without all five components "
        f"does the step come to {step_ms[ALL_REMOVED] / unet:.2f} x UNet's, and those components are where "
        "LightMedSeg's accuracy comes from: the paper's ablation (Table 4) loses 2.93 Dice points on BraTS without "
        "the LSPM and 1.50 without the anchors, and on the hippocampus the refinement is worth 0.5-0.8 points "
        "([experiments.md](experiments.md), stages 8a/8b).",
        end,
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--steps", type=int, default=20, help="timed rounds over all variants")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before them")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--steps and --threads must be positive and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    step_ms = measure(args.steps, args.warmup)
    for label, ms in step_ms.items():
        print(f"{label}: {ms:.1f} ms")
    write_section(args.output, SECTION, report_lines(step_ms, args))
    print(f"Section {SECTION!r} written to {args.output}")


if __name__ == "__main__":
    main()
