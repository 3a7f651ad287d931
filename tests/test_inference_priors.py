"""QA priors: the anchors as a 3D Slicer markups file and the texture map as NIfTI, next to each label map.

One ``python -m monai.bundle run inference`` with ``configs/inference_qa.json`` (QC report off) on a real
hippocampus case and on the same voxels saved with an oblique, permuted, flipped and anisotropic affine. The
expected anchor positions and texture map are recomputed here without MONAI's transforms: nibabel's canonical
reorientation, the z-score, the symmetric padding and a plain forward pass with ``return_priors=True``. The run
keeps each input's spacing (``--pixdim [-1,-1,-1]``) so that this recomputation needs no resampling; resampling to
the training spacing is tested in ``test_inference_spacing.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import HIPPOCAMPUS_DIR, config_arg, needs_hippocampus, write_datalist
from inference_helpers import inference_network, run_bundle_command, save_fresh_checkpoint

from lightmedseg_bundle.inference import predict_priors

pytestmark = [pytest.mark.slow, needs_hippocampus]

CASE = HIPPOCAMPUS_DIR / "imagesTr" / "hippocampus_001.nii.gz"


def _oblique_affine() -> np.ndarray:
    """Voxel axes permuted and flipped (i -> P, j -> S, k -> L), spacing 1.2 / 2.0 / 1.5 mm, rotated 10 degrees."""
    axes = np.array([[0.0, 0.0, -1.5], [-1.2, 0.0, 0.0], [0.0, 2.0, 0.0]])
    angle = math.radians(10)
    rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ axes
    affine[:3, 3] = [40.0, 25.0, -30.0]
    return affine


@pytest.fixture(scope="module")
def priors_run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("priors")
    source = nib.load(CASE)
    oblique = folder / "oblique_case.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj), _oblique_affine()), oblique)
    ckpt = save_fresh_checkpoint(folder / "model.pt")
    datalist = write_datalist(folder / "test.json", [], test=[str(CASE), str(oblique)])
    output_dir = folder / "out"
    run_bundle_command(
        "run", "inference", "--config_file", config_arg("inference.json", "inference_qa.json"),
        "--datalist_file", datalist, "--ckpt_path", ckpt, "--output_dir", output_dir,
        "--qc_report", "false", "--pixdim", "[-1,-1,-1]", cwd=folder,
    )  # fmt: skip
    return {"ckpt": ckpt, "output_dir": output_dir, "cases": {"hippocampus_001": CASE, "oblique_case": oblique}}


def _expected_priors(image_file: Path, ckpt: Path) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Image]:
    """Anchor positions (LPS, mm) and the texture map on the canonical (RAS) grid, computed without MONAI."""
    canonical = nib.as_closest_canonical(nib.load(image_file))
    data = canonical.get_fdata(dtype=np.float64)
    data = (data - data.mean()) / data.std()
    shape = np.array(data.shape)
    padded = -(-shape // 16) * 16
    before = (padded - shape) // 2
    x = np.pad(data, [(b, p - s - b) for b, p, s in zip(before, padded, shape, strict=True)])
    network = inference_network(return_priors=True)
    network.load_state_dict(torch.load(ckpt, weights_only=True))
    network.eval()
    with torch.no_grad():
        _, anchors, texture = network(torch.as_tensor(x, dtype=torch.float32)[None, None])
    index = anchors[0].double().numpy() * padded - before  # voxel index on the canonical grid
    ras = index @ canonical.affine[:3, :3].T + canonical.affine[:3, 3]
    lps = ras * np.array([-1.0, -1.0, 1.0])
    full = F.interpolate(texture, size=tuple(int(p) for p in padded), mode="trilinear", align_corners=False)[0, 0]
    crop = tuple(slice(b, b + s) for b, s in zip(before, shape, strict=True))
    return lps, full.numpy()[crop], canonical


def _check_slicer_markups(markups: dict) -> None:
    """The constraints of Slicer's markups-schema-v1.0.3.json that apply to a point list."""
    assert set(markups) >= {"@schema", "markups"}
    assert isinstance(markups["@schema"], str) and markups["@schema"].endswith("markups-schema-v1.0.3.json#")
    assert isinstance(markups["markups"], list) and len(markups["markups"]) == 1
    markup = markups["markups"][0]
    assert markup["type"] in ("Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI")
    assert markup["type"] == "Fiducial"
    assert markup["coordinateSystem"] in ("LPS", "RAS") and markup["coordinateUnits"] in ("mm", "um")
    for key in ("locked", "fixedNumberOfControlPoints"):
        assert isinstance(markup[key], bool)
    assert isinstance(markup["name"], str) and isinstance(markup["labelFormat"], str)
    display = markup["display"]
    assert 0.0 <= display["opacity"] <= 1.0 and isinstance(display["visibility"], bool)
    assert len(display["color"]) == 3 and all(0.0 <= c <= 1.0 for c in display["color"])
    assert display["glyphType"] in ("Sphere3D", "Diamond3D", "Vertex2D", "Cross2D", "StarBurst2D", "Circle2D")
    for point in markup["controlPoints"]:
        for key in ("id", "label", "description", "associatedNodeID"):
            assert isinstance(point[key], str)
        assert len(point["position"]) == 3 and all(isinstance(v, float) and math.isfinite(v) for v in point["position"])
        assert len(point["orientation"]) == 9 and all(isinstance(v, float) for v in point["orientation"])
        for key in ("selected", "locked", "visibility"):
            assert isinstance(point[key], bool)
        assert point["positionStatus"] in ("undefined", "preview", "defined")


@pytest.mark.parametrize("case", ["hippocampus_001", "oblique_case"])
def test_anchor_markups_are_slicer_point_lists_in_physical_lps_coordinates(priors_run, case):
    path = priors_run["output_dir"] / case / f"{case}_anchors.mrk.json"
    markups = json.loads(path.read_text())
    _check_slicer_markups(markups)
    points = markups["markups"][0]["controlPoints"]
    assert [p["label"] for p in points] == [f"A{k}" for k in range(1, 9)]
    assert len({p["id"] for p in points}) == 8
    assert markups["markups"][0]["coordinateSystem"] == "LPS"

    expected, _, _ = _expected_priors(priors_run["cases"][case], priors_run["ckpt"])
    np.testing.assert_allclose([p["position"] for p in points], expected, atol=1e-3)


@pytest.mark.parametrize("case", ["hippocampus_001", "oblique_case"])
def test_texture_map_is_saved_in_the_input_geometry(priors_run, case):
    source = nib.load(priors_run["cases"][case])
    saved = nib.load(priors_run["output_dir"] / case / f"{case}_texture.nii.gz")
    assert saved.shape == source.shape
    np.testing.assert_allclose(saved.affine, source.affine, atol=1e-5)
    assert saved.get_data_dtype() == np.float32

    _, expected, canonical = _expected_priors(priors_run["cases"][case], priors_run["ckpt"])
    actual = nib.as_closest_canonical(saved)
    np.testing.assert_allclose(actual.affine, canonical.affine, atol=1e-5)
    # the bundle runs the network with its CPU pass (cpu_kernels), which rounds differently: ~2e-5 on values in
    # [0, 1], where a texture map one voxel off would differ by ~1e-2
    np.testing.assert_allclose(actual.get_fdata(), expected, atol=1e-4)
    assert 0.0 <= actual.get_fdata().min() and actual.get_fdata().max() <= 1.0


def test_label_maps_are_still_written_next_to_the_priors(priors_run):
    for case in priors_run["cases"]:
        assert (priors_run["output_dir"] / case / f"{case}_seg.nii.gz").is_file()
    assert not (priors_run["output_dir"] / "qc_report.csv").exists()  # --qc_report false


def test_predict_priors_equals_the_full_forward():
    network = inference_network(return_priors=True).eval()
    x = torch.randn(2, 1, 32, 48, 16)
    with torch.no_grad():
        _, anchors, texture = network(x)
    fast_anchors, fast_texture = predict_priors(network, x)
    torch.testing.assert_close(fast_anchors, anchors)
    torch.testing.assert_close(fast_texture, texture)
    with pytest.raises(TypeError, match="PyTorch LightMedSeg"):
        predict_priors(torch.nn.Identity(), x)
