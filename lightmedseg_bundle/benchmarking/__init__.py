"""What the benchmark scripts (``scripts/benchmark.py``, ``scripts/benchmark_runtimes.py``,
``scripts/compare_networks.py``) share: peak-memory measurement and the report's machine header and sections."""

from .memory import LiveTensorMemory, peak_rss_bytes, reset_peak_rss
from .report import machine_info, marked_sections, section_markers, write_section

__all__ = [
    "LiveTensorMemory",
    "machine_info",
    "marked_sections",
    "peak_rss_bytes",
    "reset_peak_rss",
    "section_markers",
    "write_section",
]
