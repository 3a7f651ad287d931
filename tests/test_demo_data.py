import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist

from lightmedseg_bundle.data import DEMO_SHAPE, make_demo_dataset, validated_datalist

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_demo_data.py"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("demo")
    make_demo_dataset(output, num_cases=3, seed=0)
    return output


def _arrays(output: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    name = f"demo_{index:03d}.nii.gz"
    image = nib.load(output / "imagesTr" / name)
    label = nib.load(output / "labelsTr" / name)
    assert image.get_data_dtype() == np.float32 and label.get_data_dtype() == np.uint8
    return np.asarray(image.dataobj), np.asarray(label.dataobj)


def test_layout_loads_as_a_decathlon_dataset(demo_dir):
    description = json.loads((demo_dir / "dataset.json").read_text())
    assert description["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"}
    assert description["modality"] == {"0": "MRI"}
    assert description["numTraining"] == 3
    datalist = load_decathlon_datalist(str(demo_dir / "dataset.json"), True, "training", str(demo_dir))
    assert len(datalist) == 3 and all(Path(case["image"]).is_file() for case in datalist)
    validated_datalist(datalist, num_channels=1)


@pytest.mark.parametrize("index", range(3))
def test_cases_look_like_the_hippocampus_task(demo_dir, index):
    image, label = _arrays(demo_dir, index)
    assert image.shape == label.shape == DEMO_SHAPE
    assert np.all(np.isfinite(image)) and image.min() >= 0
    assert set(np.unique(label)) == {0, 1, 2}
    assert 0.01 < (label > 0).mean() < 0.1
    # the anterior part lies at the +y end and both parts stand out from the background
    centroid_y = [np.argwhere(label == k)[:, 1].mean() for k in (1, 2)]
    assert centroid_y[0] > centroid_y[1]
    assert image[label == 1].mean() > image[label == 2].mean() > image[label == 0].mean() + 100


def test_same_seed_gives_identical_arrays(demo_dir, tmp_path):
    make_demo_dataset(tmp_path / "again", num_cases=2, seed=0)
    make_demo_dataset(tmp_path / "other", num_cases=1, seed=1)
    for index in range(2):
        for first, second in zip(_arrays(demo_dir, index), _arrays(tmp_path / "again", index), strict=True):
            assert first.tobytes() == second.tobytes()
    assert _arrays(demo_dir, 0)[0].tobytes() != _arrays(tmp_path / "other", 0)[0].tobytes()


@pytest.mark.slow
def test_command_line(tmp_path):
    args = [sys.executable, str(SCRIPT), "--output", str(tmp_path / "cli"), "--num-cases", "1", "--seed", "0"]
    subprocess.run(args, check=True, capture_output=True)
    datalist = load_decathlon_datalist(str(tmp_path / "cli" / "dataset.json"), True, "training", str(tmp_path / "cli"))
    assert len(datalist) == 1
