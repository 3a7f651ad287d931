"""Per-case QC report: volumes (mL), connected components, uncertainty, intensity flags, CSV + JSON + PNG.

End to end: one ``python -m monai.bundle run inference`` with ``configs/inference_qa.json`` (priors off,
MC-dropout uncertainty, PNG overlays) on two cases derived from a real hippocampus case: the voxels with an
anisotropic spacing, and the same with intensity spikes. The reported numbers are recomputed from the saved
label maps with nibabel and scipy. The flip uncertainty, which the DICOM test runs end to end, and the
measurement functions are also tested directly on small synthetic inputs.
"""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import HIPPOCAMPUS_DIR, config_arg, needs_hippocampus
from ignite.engine import Engine
from inference_helpers import run_bundle_command, save_fresh_checkpoint
from matplotlib.image import imread
from monai.data import MetaTensor
from scipy import ndimage

from lightmedseg_bundle.inference import QCReport, flip_disagreement, mc_dropout_variance, uncertainty_score
from lightmedseg_bundle.inference.qc_metrics import intensity_flags, region_masks, region_statistics, voxel_volume_ml

CASE = HIPPOCAMPUS_DIR / "imagesTr" / "hippocampus_001.nii.gz"
SPACING = (1.2, 0.9, 2.0)


@pytest.fixture(scope="module")
def qc_run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("qc")
    if not CASE.is_file():
        pytest.skip(f"real data not found at {CASE}")
    data = np.asarray(nib.load(CASE).dataobj, dtype=np.float32)
    affine = np.diag([*SPACING, 1.0])
    images = folder / "images"
    images.mkdir()
    nib.save(nib.Nifti1Image(data, affine), images / "anisotropic.nii.gz")
    spiked = data.copy()
    spiked.reshape(-1)[::50] = 50.0 * data.max()  # 2 % of the voxels: a spike artefact
    nib.save(nib.Nifti1Image(spiked, affine), images / "spiked.nii.gz")
    ckpt = save_fresh_checkpoint(folder / "model.pt")
    output_dir = folder / "out"
    run_bundle_command(
        "run", "inference", "--config_file", config_arg("inference.json", "inference_qa.json"),
        "--input_dir", images, "--ckpt_path", ckpt, "--output_dir", output_dir,
        "--save_priors", "false", "--qc_uncertainty", "mc_dropout", "--qc_mc_samples", "3",
        "--qc_overlay_png", "true", cwd=folder,
    )  # fmt: skip
    return {"output_dir": output_dir}


@pytest.mark.slow
@needs_hippocampus
def test_csv_has_one_row_per_case_with_named_columns(qc_run):
    with open(qc_run["output_dir"] / "qc_report.csv", newline="") as f:
        rows = {row["case"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"anisotropic", "spiked"}
    for row in rows.values():
        for name in ("anterior", "posterior"):  # label names from configs/metadata.json
            assert float(row[f"volume_ml_{name}"]) >= 0 and int(row[f"components_{name}"]) >= 0
        assert row["uncertainty_method"] == "mc_dropout" and float(row["uncertainty"]) > 0
    assert "intensity_outliers" in rows["spiked"]["flags"].split(";")
    assert "intensity_outliers" not in rows["anisotropic"]["flags"].split(";")


@pytest.mark.slow
@needs_hippocampus
@pytest.mark.parametrize("case", ["anisotropic", "spiked"])
def test_json_volumes_and_components_match_the_saved_label_map(qc_run, case):
    report = json.loads((qc_run["output_dir"] / case / f"{case}_qc.json").read_text())
    saved = nib.load(qc_run["output_dir"] / case / f"{case}_seg.nii.gz")
    labels = np.asarray(saved.dataobj)
    assert report["prediction"] == str(qc_run["output_dir"] / case / f"{case}_seg.nii.gz")
    np.testing.assert_allclose(report["spacing_mm"], SPACING)
    voxel_ml = np.prod(SPACING) / 1000.0
    assert report["voxel_volume_ml"] == pytest.approx(voxel_ml)
    for label, name in ((1, "anterior"), (2, "posterior")):
        region = report["regions"][name]
        components, count = ndimage.label(labels == label, structure=np.ones((3, 3, 3)))
        assert region["voxels"] == int((labels == label).sum())
        assert region["volume_ml"] == pytest.approx((labels == label).sum() * voxel_ml)
        assert region["components"] == count
        largest = np.bincount(components.ravel())[1:].max() if count else 0
        assert region["largest_component_ml"] == pytest.approx(largest * voxel_ml)
        if region["voxels"] == 0 and (labels > 0).any():
            assert f"empty_{name}" in report["flags"]
    assert report["uncertainty"]["method"] == "mc_dropout" and report["uncertainty"]["passes"] == 3
    assert report["intensity"][0]["max"] > report["intensity"][0]["min"]


@pytest.mark.slow
@needs_hippocampus
@pytest.mark.parametrize("case", ["anisotropic", "spiked"])
def test_png_overlay_is_written(qc_run, case):
    picture = imread(qc_run["output_dir"] / case / f"{case}_qc.png")
    assert picture.ndim == 3 and picture.shape[1] > 2 * picture.shape[0]  # three panels side by side


@pytest.mark.slow
def test_mc_dropout_is_refused_before_any_case_for_a_network_without_dropout(tmp_path):
    engine = Engine(lambda engine, batch: None)
    engine.network = torch.nn.Conv3d(1, 3, 1)
    QCReport(tmp_path, ["a", "b"], preprocessing=None, uncertainty="mc_dropout").attach(engine)
    with pytest.raises(TypeError, match="flip"):
        engine.run([0])


def _ramp_network(x: torch.Tensor) -> torch.Tensor:
    """Two-class logits that depend on the position along the first spatial axis only."""
    ramp = torch.linspace(-1.0, 1.0, x.shape[2]).view(1, 1, -1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
    return torch.cat([torch.zeros_like(ramp), ramp + 0.3], dim=1)


def _single_pass(inputs, network):
    return network(inputs)


def test_flip_disagreement_is_zero_for_a_flip_invariant_model_and_not_otherwise():
    x = torch.randn(1, 1, 16, 16, 16)

    def invariant(t):
        return torch.cat([torch.zeros_like(t), t.abs().mean(dim=(2, 3, 4), keepdim=True).expand_as(t)], 1)

    maps = flip_disagreement(_single_pass, invariant, x, (0, 1, 2))
    assert maps.shape == (1, 2, 16, 16, 16) and maps[0, 0].sum() == 0
    assert uncertainty_score("flip", maps[0], maps[0, 1] > 0) == 0.0

    maps = flip_disagreement(_single_pass, _ramp_network, x, (1, 2))  # flips that keep the ramp: no disagreement
    assert maps[0, 0].sum() == 0
    maps = flip_disagreement(_single_pass, _ramp_network, x, (0,))  # the flip along the ramp changes the labels
    score = uncertainty_score("flip", maps[0], maps[0, 1] > 0)
    assert 0.0 < score < 1.0


def test_mc_dropout_variance_activates_and_restores_dropout():
    network = torch.nn.Sequential(torch.nn.Conv3d(1, 3, 1), torch.nn.Dropout3d(0.0))
    x = torch.randn(1, 1, 8, 8, 8)
    variance = mc_dropout_variance(_single_pass, network, x, num_samples=4, dropout_rate=0.5)
    assert variance.shape == (1, 1, 8, 8, 8) and float(variance.max()) > 0
    assert network[1].p == 0.0 and network.training  # rate and mode restored
    with pytest.raises(TypeError, match="dropout"):
        mc_dropout_variance(_single_pass, torch.nn.Conv3d(1, 3, 1), x)


def test_region_statistics_count_26_connected_components_and_millilitres():
    labels = np.zeros((1, 10, 10, 10))
    labels[0, 1:3, 1:3, 1:3] = 1  # 8 voxels
    labels[0, 3, 3, 3] = 1  # touches the cube by a corner only: same 26-connected component
    labels[0, 7:9, 7:9, 7:9] = 1  # a separate component of 8 voxels
    labels[0, 5, 5, 5] = 2
    masks = region_masks(labels, ["a", "b"], "softmax")
    voxel_ml = voxel_volume_ml(np.diag([2.0, 2.0, 2.5, 1.0]))
    assert voxel_ml == pytest.approx(0.01)
    stats = region_statistics(masks["a"], voxel_ml)
    assert stats["voxels"] == 17 and stats["components"] == 2
    assert stats["volume_ml"] == pytest.approx(0.17) and stats["largest_component_ml"] == pytest.approx(0.09)
    assert region_statistics(masks["b"], voxel_ml)["components"] == 1
    regions = region_masks(np.stack([labels[0] == 1, labels[0] > 0]), ["x", "y"], "sigmoid")
    assert int(regions["y"].sum()) == 18


def test_intensity_flags():
    rng = np.random.default_rng(0)
    raw = rng.normal(100.0, 10.0, (2, 20, 20, 20))
    raw[:, :5] = 0.0  # background at the minimum is not an outlier
    assert intensity_flags(raw) == []
    assert intensity_flags(raw, intensity_range=(-1, 110)) == ["intensity_out_of_range"]
    spiked = raw.copy()
    spiked[1].reshape(-1)[::50] = 1e5  # 2 % spikes in one channel, enough to inflate a standard deviation
    assert intensity_flags(spiked) == ["intensity_outliers"]
    assert "constant_intensity" in intensity_flags(np.ones((1, 4, 4, 4)))


@needs_hippocampus
def test_empty_prediction_is_flagged(tmp_path):
    raw = nib.load(CASE)
    meta = {"filename_or_obj": str(CASE)}
    image = MetaTensor(torch.zeros(1, *raw.shape), affine=torch.as_tensor(raw.affine), meta=dict(meta))
    pred = MetaTensor(torch.zeros(1, *raw.shape), affine=torch.as_tensor(raw.affine), meta=dict(meta))
    qc = QCReport(tmp_path, ["anterior", "posterior"], preprocessing=None, uncertainty="none", overlay_png=True)
    report = qc.report(image, pred, network=None, inferer=None)
    assert report["flags"] == ["empty_prediction"]
    assert report["uncertainty"]["score"] is None
    assert all(region["voxels"] == 0 for region in report["regions"].values())
    assert (tmp_path / "hippocampus_001" / "hippocampus_001_qc.json").is_file()
    assert (tmp_path / "hippocampus_001" / "hippocampus_001_qc.png").is_file()
