"""Unit tests of the helpers the configs call: datalists (``lightmedseg_bundle.data``), checkpoint paths
(``lightmedseg_bundle.bundle``), flip TTA (``lightmedseg_bundle.inferers``), the per-case metrics report
(``lightmedseg_bundle.handlers``). The workarounds' tests are in ``test_workarounds.py``."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from lightmedseg_bundle.bundle import latest_checkpoint, resume_path
from lightmedseg_bundle.data import image_datalist, limit_cases, train_val_split
from lightmedseg_bundle.handlers import PerCaseMetricsReport, write_per_case_report
from lightmedseg_bundle.inferers import FlipTTAInferer


def _dataset_json(tmp_path, n=10, validation=None):
    content = {
        "training": [{"image": f"./imagesTr/c{i:02d}.nii.gz", "label": f"./labelsTr/c{i:02d}.nii.gz"} for i in range(n)]
    }
    if validation is not None:
        content["validation"] = validation
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    path = _dataset_json(tmp_path, n=10)
    first, again = train_val_split(path, 0.2, seed=0), train_val_split(path, 0.2, seed=0)
    assert first == again
    assert len(first["training"]) == 8 and len(first["validation"]) == 2
    train_images = {c["image"] for c in first["training"]}
    val_images = {c["image"] for c in first["validation"]}
    assert not train_images & val_images and len(train_images | val_images) == 10
    assert all(os.path.isabs(c["image"]) and c["image"].startswith(str(tmp_path)) for c in first["training"])
    assert train_val_split(path, 0.2, seed=1)["validation"] != first["validation"]


def test_split_uses_the_files_own_validation_list(tmp_path):
    path = _dataset_json(tmp_path, n=4, validation=[{"image": "/abs/v.nii.gz", "label": "/abs/v_seg.nii.gz"}])
    split = train_val_split(path, 0.5, seed=0)
    assert len(split["training"]) == 4 and split["validation"] == [
        {"image": "/abs/v.nii.gz", "label": "/abs/v_seg.nii.gz"}
    ]


def test_split_keeps_one_validation_case_of_a_tiny_list(tmp_path):
    split = train_val_split(_dataset_json(tmp_path, n=3), 0.2, seed=0)
    assert len(split["training"]) == 2 and len(split["validation"]) == 1


@pytest.mark.parametrize("n, missing", [(1, "validation"), (0, "training"), (5, "validation")])
def test_a_split_without_training_or_validation_cases_is_refused(tmp_path, n, missing):
    fraction = 0.0 if n == 5 else 0.2  # --val_fraction 0 would train without ever saving model.pt
    with pytest.raises(ValueError, match=rf"the split has no {missing} case .*at least 2 labelled cases"):
        train_val_split(_dataset_json(tmp_path, n=n), fraction, seed=0)


def test_missing_datalist_file_names_the_override(tmp_path):
    with pytest.raises(FileNotFoundError, match="--dataset_dir"):
        train_val_split(str(tmp_path / "nope" / "dataset.json"))


def test_limit_cases():
    items = [{"image": str(i)} for i in range(5)]
    assert limit_cases(items, None) == items and limit_cases(items, 2) == items[:2]
    with pytest.raises(ValueError):
        limit_cases(items, 0)


def test_image_datalist_from_folder_and_file(tmp_path):
    for name in ("b.nii.gz", "a.nii.gz", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert image_datalist(str(tmp_path)) == [
        {"image": str(tmp_path / "a.nii.gz")},
        {"image": str(tmp_path / "b.nii.gz")},
    ]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps({"test": ["./a.nii.gz", {"image": "/abs/x.nii.gz"}]}))
    assert image_datalist(datalist_file=str(listed)) == [
        {"image": str(tmp_path / "a.nii.gz")},
        {"image": "/abs/x.nii.gz"},
    ]
    with pytest.raises(FileNotFoundError, match="--input_dir"):
        image_datalist(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no images"):
        image_datalist(str(tmp_path), pattern="*.mha")


def test_latest_checkpoint_and_resume_path(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
    assert resume_path(str(tmp_path), "false") is None
    with pytest.raises(FileNotFoundError, match="run without --resume"):
        resume_path(str(tmp_path), "true")
    for epoch in (2, 10, 9):
        torch.save({"epoch": epoch}, tmp_path / f"checkpoint_epoch={epoch}.pt")
    (tmp_path / "model.pt").write_bytes(b"")
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint_epoch=10.pt")
    assert resume_path(str(tmp_path), True) == str(tmp_path / "checkpoint_epoch=10.pt")


def test_resume_falls_back_from_a_damaged_latest_checkpoint(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "checkpoint_epoch=4.pt")
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "checkpoint_epoch=5.pt")
    damaged = tmp_path / "checkpoint_epoch=5.pt"
    damaged.write_bytes(damaged.read_bytes()[:40])
    assert resume_path(str(tmp_path), "true") == str(tmp_path / "checkpoint_epoch=4.pt")
    (tmp_path / "checkpoint_epoch=4.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="none of the checkpoints|no checkpoint .* loads"):
        resume_path(str(tmp_path), "true")


def test_a_new_run_replaces_a_trained_model_only_with_overwrite(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"trained")
    (tmp_path / "checkpoint_epoch=180.pt").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"model\.pt.*--overwrite true"):
        resume_path(str(tmp_path), "false")
    assert resume_path(str(tmp_path), "false", overwrite="true") is None
    # the old run's checkpoints go (a later --resume must not pick them up); model.pt waits for a better model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


class _Mirror(torch.nn.Module):
    """Logits that are not flip-symmetric: class 1 grows along the first spatial axis."""

    def forward(self, x):
        ramp = torch.linspace(-2, 2, x.shape[2]).view(1, 1, -1, 1, 1).expand_as(x)
        return torch.cat([x, x + ramp], dim=1)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_flip_tta_averages_probabilities_of_flipped_passes(activation):
    x = torch.randn(1, 1, 8, 6, 4)
    net = _Mirror()
    tta = FlipTTAInferer(SimpleInferer(), spatial_axes=[0, 1, 2], activation=activation)
    out = tta(x, net)
    prob = (lambda t: torch.softmax(t, 1)) if activation == "softmax" else torch.sigmoid
    expected = prob(net(x))
    for d in (2, 3, 4):
        expected = expected + torch.flip(prob(net(torch.flip(x, [d]))), [d])
    expected = expected / 4
    torch.testing.assert_close(prob(out), expected, atol=1e-5, rtol=1e-5)
    assert out.shape == (1, 2, 8, 6, 4)


def test_flip_tta_of_a_flip_equivariant_network_changes_nothing():
    net = torch.nn.Conv3d(1, 3, kernel_size=1)
    x = torch.randn(2, 1, 16, 16, 16)
    inferer = SlidingWindowInferer(roi_size=(16, 16, 16), sw_batch_size=2)
    out = FlipTTAInferer(inferer)(x, net)
    torch.testing.assert_close(torch.softmax(out, 1), torch.softmax(net(x), 1), atol=1e-5, rtol=1e-5)


def test_per_case_report_names_the_class_columns(tmp_path):
    (tmp_path / "val_mean_dice_raw.csv").write_text(
        "filename,class0,class1,mean\n/d/imagesTr/case_1.nii.gz,0.5,0.7,0.6\n/d/imagesTr/case_2.nii.gz,0.3,nan,0.3\n"
    )
    (tmp_path / "val_hd95_raw.csv").write_text(
        "filename,class0,class1,mean\n/d/imagesTr/case_1.nii.gz,2.0,3.0,2.5\n/d/imagesTr/case_2.nii.gz,4.0,inf,4.0\n"
    )
    summary = write_per_case_report(
        str(tmp_path), {"val_mean_dice": "dice", "val_hd95": "hd95"}, ["anterior", "posterior"]
    )
    assert summary["dice"]["anterior"] == pytest.approx(0.4) and summary["dice"]["posterior"] == pytest.approx(0.7)
    assert summary["hd95"]["posterior"] == pytest.approx(3.0)  # inf (empty prediction) is left out
    with open(tmp_path / "per_case_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["case"] for r in rows] == ["case_1", "case_2"]
    assert rows[0]["dice_anterior"] == "0.5" and rows[0]["hd95_posterior"] == "3"
    with pytest.raises(ValueError, match="class column"):
        write_per_case_report(str(tmp_path), {"val_mean_dice": "dice"}, ["only_one"])
    assert PerCaseMetricsReport(str(tmp_path), {"val_mean_dice": "dice"}, ["a", "b"]).class_names == ["a", "b"]
