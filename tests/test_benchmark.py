"""End-to-end tests of ``scripts/benchmark.py`` at a tiny input size; no timing assertions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "benchmark.py"
MODELS = ("lightmedseg_ghost", "unet", "refineformer3d", "segmaformer", "veloxseg", "hrmedseg")
NUMERIC_COLUMNS = (
    "params (M)",
    "MACs (G)",
    "latency median (ms)",
    "latency min (ms)",
    "latency max (ms)",
    "peak RSS (MiB)",
    "RSS increase in forward (MiB)",
    "peak tensor memory (MiB)",
)
#: the sections that scripts/benchmark_runtimes.py and scripts/compare_networks.py write into the same report
KEPT = "\n\n".join(
    f"<!-- {n}:start -->\n## {n}\nkept text of {n}\n<!-- {n}:end -->" for n in ("runtimes", "comparison")
)


def run_benchmark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def parse_table(markdown: str) -> dict[str, dict[str, str]]:
    """Return the results table as {model: {column: cell}}."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    output = tmp_path_factory.mktemp("benchmark") / "bench.md"
    output.write_text("# old report\n\n" + KEPT + "\n\n## old results\n")
    proc = run_benchmark(
        "--size", "32", "--repeats", "1", "--warmup", "0", "--models", ",".join(MODELS), "--device", "cpu",
        "--output", str(output),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return output.read_text()


def test_rows_are_numeric(report: str) -> None:
    table = parse_table(report)
    assert set(table) == set(MODELS)
    for model, row in table.items():
        assert row["status"] == "ok", (model, row["status"])
        for column in NUMERIC_COLUMNS:
            assert float(row[column]) >= 0, (model, column)
        assert float(row["params (M)"]) > 0 and float(row["MACs (G)"]) > 0, model
        assert float(row["peak RSS (MiB)"]) > 0, model
    assert float(table["unet"]["latency / UNet"]) == 1.0


def test_live_tensor_memory_counts_what_is_alive_at_once() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    from benchmark import LiveTensorMemory

    mib = 1 << 20
    x = torch.randn(mib // 4)  # 1 MiB, created outside: not counted
    with torch.inference_mode(), LiveTensorMemory() as tracker:
        a = x * 2  # 1 MiB alive
        b = a + 1  # 2 MiB alive: the peak
        del a
        c = b.view(-1)  # a view: no new storage
        d = c * 3  # 2 MiB alive again (b and d)
        del b, c, d
    assert tracker.peak == 2 * mib and tracker.live == 0


def test_machine_header(report: str) -> None:
    assert "## Machine" in report
    for key in ("Date:", "Command:", "CPU:", "torch threads:", "RAM:", "GPU:", "torch 2", "monai"):
        assert key in report, key
    assert "--models lightmedseg_ghost,unet" in report


def test_targets_section(report: str) -> None:
    targets = report.split("## Targets", 1)[1]
    lines = [line for line in targets.splitlines() if line.startswith("- ")]
    assert len(lines) == 3
    assert any(word in lines[0] for word in ("PASS", "MISS"))  # vs UNet: measured
    assert "N/A (segresnet not measured)" in lines[1]
    assert any(word in lines[2] for word in ("PASS", "MISS"))  # lowest memory: UNet measured


def test_sections_of_the_other_scripts_are_kept(report: str) -> None:
    assert KEPT in report
    assert "# old report" not in report and "## old results" not in report


def test_unknown_model_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    proc = run_benchmark("--size", "32", "--models", "unet,not_a_model", "--output", str(output))
    assert proc.returncode != 0
    assert "unknown model(s) not_a_model" in proc.stderr
    assert "lightmedseg_ghost" in proc.stderr  # the valid choices are listed
    assert not output.exists()
