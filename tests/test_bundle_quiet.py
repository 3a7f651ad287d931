"""Known-harmless MONAI messages are absent from the bundle's own runs (``silence_known_harmless_messages``;
``test_workarounds.py`` shows that MONAI still emits each one, else its entry in ``workarounds.py`` goes)."""

from __future__ import annotations

import pytest
from conftest import CONFIGS, REPO_ROOT, hippocampus_cases, needs_hippocampus, run_bundle


@pytest.mark.slow
@needs_hippocampus
def test_an_inference_run_prints_none_of_them(tmp_path):
    image = hippocampus_cases(1)[0]["image"]
    proc = run_bundle("inference", "--config_file", CONFIGS / "inference.json", "--bundle_root", REPO_ROOT,
                      "--input_dir", image.rsplit("/", 1)[0], "--input_pattern", image.rsplit("/", 1)[1],
                      "--output_dir", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "nvImageCodec" not in output and "Orientationd.__init__:labels" not in output
    assert "inference finished: 1 case(s)" in output
