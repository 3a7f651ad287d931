"""A small, deterministic synthetic dataset shaped like MSD Task04 (hippocampus), for demos and smoke tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.ndimage import gaussian_filter

#: voxel grid of every demo volume, 1 mm isotropic, about the size of an MSD hippocampus crop
DEMO_SHAPE = (36, 48, 36)
#: label names, as in the MSD hippocampus dataset.json
DEMO_LABELS = {"0": "background", "1": "Anterior", "2": "Posterior"}


def make_demo_dataset(output_dir: str | os.PathLike, num_cases: int = 24, seed: int = 0) -> Path:
    """
    Write a synthetic segmentation dataset in the Medical Segmentation Decathlon layout
    (``imagesTr/``, ``labelsTr/``, ``dataset.json``), readable with ``monai.data.load_decathlon_datalist``.

    Each case is a 1-channel float32 "MRI" volume of shape :py:data:`DEMO_SHAPE` (1 mm voxels) with a uint8 label
    map. It holds an elongated, slightly bent and tapered structure, placed and oriented at random roughly along the
    y (anterior-posterior) axis and split across its length into an anterior part (label 1, the +y end) and a
    posterior part (label 2). Both parts are brighter than the background, the anterior one more so; the image also
    has darker distractor blobs, a smooth background texture, partial-volume blur, a smooth multiplicative bias
    field and Rician noise. A small network learns it within minutes on a CPU.

    The output depends only on ``seed``: case ``i`` is drawn from its own generator seeded by ``(seed, i)``, so the
    first cases are the same whatever ``num_cases`` is.

    Args:
        output_dir: directory to write into; created if missing.
        num_cases: number of cases to write.
        seed: seed of the random generator.

    Returns:
        the path of the written ``dataset.json``.
    """
    output_dir = Path(output_dir)
    (output_dir / "imagesTr").mkdir(parents=True, exist_ok=True)
    (output_dir / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for index in range(num_cases):
        image, label = _demo_case(np.random.default_rng([seed, index]))
        name = f"demo_{index:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, np.eye(4)), output_dir / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, np.eye(4)), output_dir / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    description = {
        "name": "LightMedSegDemo",
        "description": f"Synthetic hippocampus-like volumes written by lightmedseg_bundle.data.make_demo_dataset "
        f"(seed {seed}).",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI"},
        "labels": DEMO_LABELS,
        "numTraining": num_cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    dataset_json = output_dir / "dataset.json"
    dataset_json.write_text(json.dumps(description, indent=2) + "\n")
    return dataset_json


def _demo_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one (image, label) pair: float32 and uint8 arrays of shape :py:data:`DEMO_SHAPE`."""
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in DEMO_SHAPE], indexing="ij"), axis=-1)
    size = np.asarray(DEMO_SHAPE, dtype=np.float64)

    # the structure: a bent, tapered tube along `axis` (mostly +y), centred near the middle of the volume
    axis = np.array([0.0, 1.0, 0.0]) + rng.uniform(-0.35, 0.35, size=3) * np.array([1.0, 0.0, 1.0])
    axis /= np.linalg.norm(axis)
    bend_direction = np.cross(axis, rng.normal(size=3))
    bend_direction /= np.linalg.norm(bend_direction)
    length = rng.uniform(30.0, 38.0)
    radius = rng.uniform(5.0, 7.0)
    centre = size / 2 + rng.uniform(-2.0, 2.0, size=3)
    offset = grid - centre
    along = offset @ axis  # position along the structure, 0 at its centre
    half = along / (length / 2)  # -1 at the posterior end, +1 at the anterior end
    centreline_shift = rng.uniform(2.0, 4.0) * half**2
    across = np.linalg.norm(offset - along[..., None] * axis - centreline_shift[..., None] * bend_direction, axis=-1)
    local_radius = radius * (0.8 + 0.2 * half)  # thicker anterior "head", thinner posterior "tail"
    inside = (across / local_radius) ** 2 + half**4 <= 1.0
    anterior = half > rng.uniform(-0.15, 0.15)
    label = np.where(inside, np.where(anterior, 1, 2), 0).astype(np.uint8)

    # intensities: textured background, darker distractor blobs, the two brighter parts
    image = 400.0 + 60.0 * _smooth_noise(rng, sigma=4.0)
    for _ in range(rng.integers(1, 4)):
        blob_centre = rng.uniform(0.15, 0.85, size=3) * size
        blob_radii = rng.uniform(2.5, 6.0, size=3)
        blob = (((grid - blob_centre) / blob_radii) ** 2).sum(axis=-1) <= 1.0
        image[blob & ~inside] = rng.uniform(120.0, 250.0)
    image[label == 1] = rng.uniform(720.0, 800.0)
    image[label == 2] = rng.uniform(580.0, 660.0)
    image = gaussian_filter(image, sigma=0.7)

    # acquisition: smooth multiplicative bias field and Rician noise
    unit = grid / (size - 1) * 2.0 - 1.0
    bias = 1.0 + unit @ rng.uniform(-0.12, 0.12, size=3) + (unit**2) @ rng.uniform(-0.08, 0.08, size=3)
    noise_sigma = rng.uniform(25.0, 40.0)
    real = image * bias + rng.normal(0.0, noise_sigma, size=DEMO_SHAPE)
    imaginary = rng.normal(0.0, noise_sigma, size=DEMO_SHAPE)
    return np.sqrt(real**2 + imaginary**2).astype(np.float32), label


def _smooth_noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise of shape :py:data:`DEMO_SHAPE`, rescaled to unit standard deviation."""
    noise = gaussian_filter(rng.normal(size=DEMO_SHAPE), sigma=sigma)
    return noise / noise.std()
