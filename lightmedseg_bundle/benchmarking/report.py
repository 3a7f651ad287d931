"""The benchmark report: the machine it ran on, and sections of ``docs/benchmarks.md`` that each benchmark script
rewrites between its own markers, keeping the rest of the file."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
from pathlib import Path

import monai
import psutil
import torch

__all__ = ["machine_info", "marked_sections", "section_markers", "write_section"]


def section_markers(name: str) -> tuple[str, str]:
    """The HTML comments that delimit the report section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def marked_sections(text: str) -> list[str]:
    """Every section of ``text`` between a pair of markers of :func:`section_markers`, markers included, in order."""
    return [m.group(0) for m in re.finditer(r"<!-- (\w+):start -->.*?<!-- \1:end -->", text, flags=re.DOTALL)]


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
