"""End-to-end test of ``scripts/compare_networks.py`` on a few real hippocampus cases; no timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import HIPPOCAMPUS_DIR, REPO_ROOT, needs_hippocampus

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

SCRIPT = REPO_ROOT / "scripts" / "compare_networks.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset-dir", str(HIPPOCAMPUS_DIR), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def table_rows(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return {row[0]: dict(zip(header, row, strict=True)) for row in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}  # fmt: skip


@needs_hippocampus
def test_unet_trains_through_the_bundle_and_the_shipped_weights_are_tabled(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# kept heading\n\nkept text\n")
    args = ["--networks", "unet", "--shipped", "--epochs", "1", "--num-train-cases", "2", "--num-val-cases", "3"]
    args += ["--num-cases", "1", "--num-workers", "0", "--work-dir", str(tmp_path / "work"), "--output", str(report)]
    proc = run_script(*args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    text = report.read_text()
    assert text.startswith("# kept heading\n\nkept text\n")
    rows = table_rows(text)
    assert set(rows) == {"lightmedseg_shipped", "unet"}
    shipped, unet = rows["lightmedseg_shipped"], rows["unet"]
    assert shipped["epochs"] == "-" and unet["epochs"] == "1"
    assert float(shipped["params (M)"]) < 0.5 < 4 < float(unet["params (M)"]) < 6
    assert float(shipped["mean Dice"]) > 0.7, "the shipped weights should segment the validation cases"
    assert 0 <= float(unet["mean Dice"]) <= 1 and float(unet["CPU inference per case (ms)"]) > 0
    train = json.loads((REPO_ROOT / "configs" / "train.json").read_text())
    roi = "x".join(str(s) for s in train["roi_size"])
    recipe = next(line for line in text.splitlines() if line.startswith("- Recipe of unet: "))
    assert f"ROI {roi}, batch {train['batch_size']} x {train['num_samples']} crop(s), AdamW at " in recipe
    assert "RandAffined" in recipe and "recipe of lightmedseg_shipped" not in text.lower()
    result = json.loads((tmp_path / "work" / "unet" / "result.json").read_text())
    assert result["epochs"] == 1 and (tmp_path / "work" / "unet" / "models" / "model.pt").is_file()

    again = run_script(*args, "--reuse")  # nothing retrained, the same table
    assert again.returncode == 0 and again.stdout.count("reusing") == 2
    assert table_rows(report.read_text()) == rows


def test_unknown_network_is_refused_with_the_overlay_it_looked_for(tmp_path):
    proc = run_script("--networks", "nosuchnet", "--output", str(tmp_path / "b.md"))
    assert proc.returncode == 2
    assert "nosuchnet" in proc.stderr and "configs/networks/nosuchnet.json" in proc.stderr
    assert not (tmp_path / "b.md").exists()
