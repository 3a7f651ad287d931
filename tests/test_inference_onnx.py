"""CPU runtime: ONNX export through ``python -m monai.bundle onnx_export`` and ONNX Runtime inference.

The network is exported once (module fixture) with the command the model card documents; the ONNX Runtime
label maps must match the PyTorch ones (Dice >= 0.999) on real hippocampus cases, both runs going through
``python -m monai.bundle run inference``. Two checkpoints: the shipped ``models/model.pt`` (what users run), and
a freshly initialised network, whose label maps split each case into large background and anterior regions with a
long boundary of small logit margins, a harder test of numerical equivalence than a trained network's confident maps.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, config_arg, needs_hippocampus
from inference_helpers import dice, inference_network, run_bundle_command, save_fresh_checkpoint

from lightmedseg_bundle.inference import ONNX_EXPORT_COMMAND, OnnxPredictor

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

CASES = "hippocampus_00[13].nii.gz"  # two real cases of imagesTr, by glob pattern (nothing is copied)


@pytest.fixture(scope="module", params=["shipped", "fresh"])
def exported(request, tmp_path_factory) -> dict[str, Path]:
    """A checkpoint and its ONNX export by ``monai.bundle onnx_export --args_file configs/onnx_export.json``."""
    folder = tmp_path_factory.mktemp("onnx")
    shipped = REPO_ROOT / "models" / "model.pt"
    ckpt = shipped if request.param == "shipped" else save_fresh_checkpoint(folder / "model.pt")
    onnx_path = folder / "model.onnx"
    run_bundle_command(
        "onnx_export",
        "--args_file", CONFIGS / "onnx_export.json",
        "--config_file", CONFIGS / "inference.json",
        "--ckpt_file", ckpt,
        "--filepath", onnx_path,
        cwd=REPO_ROOT,
    )  # fmt: skip
    return {"ckpt": ckpt, "onnx": onnx_path, "weights": request.param}


def test_exported_model_matches_eager_on_any_size(exported):
    """Dynamic batch and spatial axes: sliding-window batches and whole padded volumes give the eager logits."""
    network = inference_network()
    network.load_state_dict(torch.load(exported["ckpt"], weights_only=True))
    network.eval()
    predictor = OnnxPredictor(exported["onnx"], num_threads=1)
    for shape in [(4, 1, 32, 32, 32), (1, 1, 48, 64, 48), (2, 1, 16, 32, 80)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected = network(x)
        actual = predictor(x)
        assert actual.shape == expected.shape and actual.dtype == torch.float32
        torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_predictor_explains_a_missing_file_and_a_bad_size(tmp_path, exported):
    with pytest.raises(FileNotFoundError, match="onnx_export"):
        OnnxPredictor(tmp_path / "missing.onnx")
    assert "--use_trace True" in ONNX_EXPORT_COMMAND and "'dynamo': False" in ONNX_EXPORT_COMMAND
    with pytest.raises(ValueError, match="multiples of 16"):
        OnnxPredictor(exported["onnx"])(torch.zeros(1, 1, 32, 32, 40))


@needs_hippocampus
def test_onnx_runtime_inference_matches_pytorch_on_real_cases(tmp_path, exported):
    common = [
        "--input_dir", HIPPOCAMPUS_DIR / "imagesTr",
        "--input_pattern", CASES,
        "--ckpt_path", exported["ckpt"],
    ]  # fmt: skip
    run_bundle_command(
        "run", "inference", "--config_file", config_arg("inference.json"), *common,
        "--output_dir", tmp_path / "pytorch", cwd=tmp_path,
    )  # fmt: skip
    run_bundle_command(
        "run", "inference", "--config_file", config_arg("inference.json", "inference_onnx.json"), *common,
        "--onnx_path", exported["onnx"], "--onnx_threads", "1", "--output_dir", tmp_path / "onnx", cwd=tmp_path,
    )  # fmt: skip
    pytorch_maps = sorted((tmp_path / "pytorch").glob("*/*_seg.nii.gz"))
    assert len(pytorch_maps) == 2
    for pytorch_file in pytorch_maps:
        onnx_file = tmp_path / "onnx" / pytorch_file.relative_to(tmp_path / "pytorch")
        reference, onnx_map = nib.load(pytorch_file), nib.load(onnx_file)
        np.testing.assert_allclose(onnx_map.affine, reference.affine)
        a, b = np.asarray(reference.dataobj), np.asarray(onnx_map.dataobj)
        assert a.shape == b.shape
        if exported["weights"] == "shipped":
            assert all((a == label).sum() > 100 for label in (1, 2)), "the shipped weights should find both labels"
        else:
            assert (a > 0).mean() > 0.1, "the label map is not a meaningful test: almost no foreground"
        for label in (1, 2):
            assert dice(a, b, label) >= 0.999, f"{pytorch_file.name}: Dice of label {label} {dice(a, b, label):.5f}"
