"""Known-harmless MONAI messages: still emitted upstream (else their entry in ``bundle/quiet.py`` goes), and absent
from the bundle's own runs."""

from __future__ import annotations

import logging
import re
import warnings

import pytest
from conftest import CONFIGS, REPO_ROOT, hippocampus_cases, needs_hippocampus, run_bundle
from monai.transforms import LoadImaged, Orientationd

from lightmedseg_bundle.bundle.quiet import KNOWN_HARMLESS_LOGGERS, KNOWN_HARMLESS_WARNINGS


def test_monai_still_emits_each_silenced_message(caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        for name in KNOWN_HARMLESS_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        LoadImaged(keys="image")
        Orientationd(keys="image", axcodes="RAS")
    messages = [str(w.message) for w in caught]
    for pattern in KNOWN_HARMLESS_WARNINGS:
        assert any(re.match(pattern, m) for m in messages), f"MONAI no longer warns {pattern!r}: drop it"
    for name in KNOWN_HARMLESS_LOGGERS:
        assert any(r.name == name for r in caplog.records), f"MONAI's {name} no longer logs: drop it"


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
