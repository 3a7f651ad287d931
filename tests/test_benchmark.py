"""End-to-end tests of ``scripts/benchmark.py`` at a tiny input size; no timing assertions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import HIPPOCAMPUS_DIR

from lightmedseg_bundle.benchmarking import LiveTensorMemory

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "benchmark.py"
NETWORKS = ("lightmedseg", "veloxseg", "unet")
NUMERIC_COLUMNS = (
    "params (M)",
    "MACs (G)",
    "forward median (ms)",
    "forward GFLOP/s",
    "% of matmul peak",
    "peak RSS (MiB)",
    "peak tensor memory (MiB)",
    "training step (ms)",
    "training GFLOP/s",
    "per case (ms)",
)
#: sections that the other benchmark scripts write into the same report (any name is kept)
KEPT = "\n\n".join(
    f"<!-- {n}:start -->\n## {n}\nkept text of {n}\n<!-- {n}:end -->"
    for n in ("runtimes", "comparison", "cohort", "anything_else")
)

sys.path.insert(0, str(SCRIPT.parent))
from benchmark import build_network, config_parser  # noqa: E402  (scripts/benchmark.py)

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real


def run_benchmark(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )


def parse_table(markdown: str, title: str) -> dict[str, dict[str, str]]:
    """The first table after the heading ``title`` as {first cells joined by '+': {column: cell}}."""
    section = markdown.split(title, 1)[1]
    lines = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    key = 2 if header[1] == "variant" else 1
    return {"+".join(row[:key]): dict(zip(header, row, strict=True)) for row in rows}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not (HIPPOCAMPUS_DIR / "dataset.json").is_file():
        pytest.skip(f"real data not found at {HIPPOCAMPUS_DIR} (per-case timing and the training epoch need it)")
    output = tmp_path_factory.mktemp("benchmark") / "bench.md"
    output.write_text("# old report\n\n" + KEPT + "\n\n## old results\n")
    proc = run_benchmark(
        "--size", "32", "--repeats", "1", "--warmup", "0", "--train-steps", "1", "--num-cases", "1",
        "--networks", ",".join(NETWORKS), "--epoch", "--epoch-cases", "2", "--epoch-workers", "0",
        "--dataset-dir", str(HIPPOCAMPUS_DIR), "--output", str(output),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return output.read_text()


def test_every_network_is_measured_plain_and_with_the_cpu_pass(report: str) -> None:
    table = parse_table(report, "## Results")
    assert set(table) == {f"{n}+{v}" for n in NETWORKS for v in ("plain", "cpu")}
    for key, row in table.items():
        assert row["status"] == "ok", (key, row["status"])
        for column in NUMERIC_COLUMNS:  # at 32^3 a share of the peak may round to 0
            assert float(row[column]) >= 0, (key, column)
        for column in ("params (M)", "MACs (G)", "forward median (ms)", "peak RSS (MiB)", "training step (ms)"):
            assert float(row[column]) > 0, (key, column)
        assert float(row["per case (ms)"]) > 0, key
    for name in NETWORKS:  # the pass changes the kernels, not the network
        assert table[f"{name}+plain"]["params (M)"] == table[f"{name}+cpu"]["params (M)"]
        assert table[f"{name}+plain"]["MACs (G)"] == table[f"{name}+cpu"]["MACs (G)"]
    assert table["unet+cpu"]["forward / UNet"] == table["unet+plain"]["step / UNet"] == "1.00"


def test_training_epoch_runs_through_train_json(report: str) -> None:
    table = parse_table(report, "## One training epoch")
    assert set(table) == set(NETWORKS)
    for name, row in table.items():
        assert (row["training cases"], row["iterations"], row["data workers"]) == ("2", "1", "0"), name
        assert row["CPU pass"] == "yes" and float(row["epoch (s)"]) > 0, name
    assert table["unet"]["epoch / UNet"] == "1.00"


def test_targets_are_all_evaluated(report: str) -> None:
    targets = report.split("## Targets", 1)[1].split("<!--", 1)[0]
    lines = [line for line in targets.splitlines() if line.startswith("- ")]
    assert len(lines) == 7
    assert all(line.endswith(("PASS", "MISS")) for line in lines), lines


def test_machine_header_names_the_peak(report: str) -> None:
    for key in ("## Machine", "Date:", "Command:", "CPU:", "torch 2", "monai", "Measured peak:"):
        assert key in report, key


def test_sections_of_the_other_scripts_are_kept(report: str) -> None:
    assert KEPT in report
    assert "# old report" not in report and "## old results" not in report


def test_networks_are_built_from_the_shipped_configs() -> None:
    hippocampus = build_network(config_parser("lightmedseg"), "plain")
    assert hippocampus.refinement is not None  # train.json ships the refined head
    brats = build_network(config_parser("lightmedseg", "tasks/brats.json"), "cpu")
    assert brats.refinement is None and brats.in_channels == 4  # the BraTS overlay: trilinear head, 4 modalities
    unet = build_network(config_parser("unet"), "plain")
    assert type(unet).__name__ == "UNet" and sum(p.numel() for p in unet.parameters()) > 4e6


def test_live_tensor_memory_counts_what_is_alive_at_once() -> None:
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


def test_unknown_network_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    proc = run_benchmark("--size", "32", "--networks", "unet,not_a_model", "--output", str(output))
    assert proc.returncode != 0
    assert "unknown networks not_a_model" in proc.stderr
    assert "lightmedseg" in proc.stderr  # the valid choices are listed
    assert not output.exists()


def test_rounds_combine_into_medians_and_a_skipped_round_wins() -> None:
    from benchmark import combine_rounds

    def round_result(median: float, low: float, high: float, case: float) -> dict:
        return {"status": "ok", "latency_ms": {"median": median, "min": low, "max": high}, "case_ms": case, "p": "x"}

    rounds = [round_result(10, 9, 12, 3.0), round_result(30, 20, 40, 1.0), round_result(20, 15, 21, 2.0)]
    combined = combine_rounds(rounds)
    assert combined["latency_ms"] == {"median": 20, "min": 9, "max": 40}
    assert combined["case_ms"] == 2.0 and combined["p"] == "x" and combined["rounds"] == 3
    skipped = {"status": "skipped", "reason": "out of memory"}
    assert combine_rounds([rounds[0], skipped]) == skipped


def test_component_costs_are_tabled_in_their_own_section(tmp_path: Path) -> None:
    from benchmark_components import ALL_REMOVED, REMOVALS, UNET

    output = tmp_path / "bench.md"
    output.write_text("# old report\n\n" + KEPT + "\n")
    script = SCRIPT.parent / "benchmark_components.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--steps", "1", "--warmup", "0", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = output.read_text()
    assert KEPT in report  # the other scripts' sections stay
    table = parse_table(report, "## Where the shipped LightMedSeg's training step goes")
    assert set(table) == {*REMOVALS, ALL_REMOVED, UNET}
    steps = {label: float(row["step (ms)"]) for label, row in table.items()}
    assert all(ms > 0 for ms in steps.values())
    assert float(table[UNET]["step / UNet's"]) == 1.0


def test_component_stand_ins_keep_the_networks_output_shape() -> None:
    from benchmark_components import REMOVALS

    x = torch.randn(1, 1, 32, 48, 32)
    for label, (overrides, stand_ins) in REMOVALS.items():
        net = config_parser("lightmedseg", **overrides).get_parsed_content("network_def")
        for stand_in in stand_ins:
            stand_in(net)
        with torch.no_grad():
            assert net(x).shape == (1, 3, 32, 48, 32), label
