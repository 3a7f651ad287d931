"""CPU runtimes: ``scripts/benchmark_runtimes.py`` in one small run, and bounded sliding-window memory.

The script runs on one hippocampus case with its three runtimes (its 240 x 240 x 155 BraTS memory workload is
left to the benchmark itself: ``--large-size none``). The memory bound is checked in this process on a smaller
4-channel volume, for the eager network and for ONNX Runtime.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, bundle_env, needs_hippocampus
from inference_helpers import inference_network
from monai.inferers import SlidingWindowInferer

from lightmedseg_bundle.inference import OnnxPredictor

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

SCRIPT = REPO_ROOT / "scripts" / "benchmark_runtimes.py"
RUNTIMES = ("eager", "torchscript", "onnxruntime")


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("runtimes")
    output = folder / "benchmarks.md"
    output.write_text(
        "# LightMedSeg benchmarks\n\nother results\n\n<!-- runtimes:start -->\nold\n<!-- runtimes:end -->\n\ntail\n"
    )
    env = bundle_env()
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable, str(SCRIPT), "--num-cases", "1", "--repeats", "1", "--threads", "1", "--large-size", "none",
        "--dataset-dir", str(HIPPOCAMPUS_DIR), "--output", str(output), "--json", str(folder / "raw.json"),
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"markdown": output.read_text(), "raw": json.loads((folder / "raw.json").read_text())["results"]}


@needs_hippocampus
def test_section_replaces_its_markers_and_keeps_the_rest(benchmark_run):
    text = benchmark_run["markdown"]
    assert text.startswith("# LightMedSeg benchmarks\n\nother results\n") and text.endswith("\n\ntail\n")
    assert text.count("<!-- runtimes:start -->") == 1 and "\nold\n" not in text
    section = text.split("<!-- runtimes:start -->")[1].split("<!-- runtimes:end -->")[0]
    assert "Per-case latency: 1 MSD hippocampus cases" in section
    for runtime in RUNTIMES:
        assert section.count(f"| {runtime} |") == 1


@needs_hippocampus
def test_the_three_runtimes_give_the_same_label_maps(benchmark_run):
    for runtime in RUNTIMES:
        result = benchmark_run["raw"][f"{runtime}/cases"]
        assert len(result["latencies"]) == 1 and result["latencies"][0] > 0
        assert result["min_dice_vs_eager"] >= 0.999, runtime


def _peak_rss_increase(run) -> int:
    """Bytes by which the peak RSS of this process exceeds its RSS before ``run()`` (Linux ``/proc`` only)."""

    def status(field: str) -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark
    except OSError:
        pytest.skip("the peak RSS cannot be reset on this system")
    before = status("VmRSS")
    run()
    return status("VmHWM") - before


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_sliding_window_memory_stays_bounded_by_the_volume_buffers(tmp_path, runtime):
    """
    On a 4-channel 128 x 128 x 96 volume with 32^3 windows, the peak RSS grows by less than the volume's own
    float32 buffers (input, 3-channel output, aggregation and count maps: 66 MiB), while one whole-volume
    forward pass of the same network needs about 100 MiB more than its input.
    """
    torch.manual_seed(0)
    network = inference_network(in_channels=4).eval()
    predictor = network
    if runtime == "onnxruntime":
        kwargs = json.loads((CONFIGS / "onnx_export.json").read_text())["converter_kwargs"]
        torch.onnx.export(network, (torch.randn(1, 4, 32, 32, 32),), str(tmp_path / "model.onnx"), **kwargs)
        predictor = OnnxPredictor(tmp_path / "model.onnx", num_threads=1)
    x = torch.randn(1, 4, 128, 128, 96)
    inferer = SlidingWindowInferer((32, 32, 32), sw_batch_size=2, overlap=0.5, mode="gaussian")
    buffers = x[0, 0].numel() * 4 * (4 + 3 + 3 + 1)
    with torch.inference_mode():
        inferer(x[..., :32, :32, :32], predictor)  # warm-up
        increase = _peak_rss_increase(lambda: inferer(x, predictor))
    assert increase < buffers, f"{runtime}: peak RSS grew by {increase / 2**20:.0f} MiB"
