"""The release zip of the bundle, in the layout ``monai.bundle.download`` extracts.

``monai.bundle.download`` (``url=``, ``source="github"``, ``monaihosting``) downloads ``<name>_v<version>.zip`` and
extracts it into ``bundle_dir`` expecting one top-level folder ``<name>/``; ``monai.bundle.load`` then reads
``bundle_dir/<name>/models/model.pt`` and ``bundle_dir/<name>/configs/<workflow>.json``. The zip holds::

    lightmedseg_bundle/
        configs/            every config, metadata.json, logging.conf, task overlays
        models/             model.pt (state dict), model.ts (TorchScript), other exported models
        docs/               model card (README.md), figures, licences
        LICENSE  metadata.json  large_files.yml
        lightmedseg_bundle/ the Python package that the configs import (network, loss, transforms, helpers)
        pyproject.toml              so that ``pip install <bundle folder>`` installs that package
        README.md                   the zip's own (:func:`zip_readme`), not the repository's

The Python package is shipped because the configs instantiate ``lightmedseg_bundle.*`` classes: run from the
extracted bundle folder (``python -m monai.bundle run ...``, whose ``-m`` puts the current folder first on
``sys.path``), or after ``pip install <bundle folder>``, a machine that never saw this repository can use the bundle.

The zip is deterministic: members sorted by path, fixed timestamps and permissions, so the same files give the
same bytes (and the same sha256).
"""

from __future__ import annotations

import fnmatch
import os
import zipfile
from pathlib import Path

__all__ = ["BUNDLE_NAME", "REQUIRED_FILES", "build_release_zip", "release_files", "zip_name", "zip_readme"]

BUNDLE_NAME = "lightmedseg_bundle"

#: files a release cannot do without
REQUIRED_FILES = (
    "configs/metadata.json",
    "configs/train.json",
    "configs/evaluate.json",
    "configs/inference.json",
    "models/model.pt",
    "models/model.ts",
    "docs/README.md",
    "LICENSE",
    "metadata.json",
    "large_files.yml",
)
#: single files at the bundle root that go into the release (when present)
_ROOT_FILES = ("LICENSE", "metadata.json", "large_files.yml", "pyproject.toml", "README.md")
#: folders that go into the release, whole (minus the exclusions below)
_FOLDERS = ("configs", "docs", "lightmedseg_bundle")
#: model files that go into the release; training checkpoints never do
_MODEL_PATTERNS = ("*.pt", "*.ts", "*.onnx", "*.json")
#: never in a release: caches, training outputs, environments, build outputs, editor and OS litter
EXCLUDE_PATTERNS = (
    "*/__pycache__/*",
    "*.pyc",
    "*.pyo",
    "*.egg-info/*",
    "*/.ipynb_checkpoints/*",
    ".DS_Store",
    "*/.DS_Store",
    "*~",
    "*.swp",
    "*.tmp",
    "*.partial",
    "models/checkpoint_*.pt",
    "eval/*",
    "dist/*",
    ".venv*",
    "*/.pytest_cache/*",
    "*/.ruff_cache/*",
)
#: 1980-01-01 00:00:00, the earliest time a zip can hold: the same files always give the same zip bytes
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _excluded(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch("/" + rel, p) for p in EXCLUDE_PATTERNS)


def release_files(bundle_root: str | os.PathLike) -> list[str]:
    """Paths (relative, ``/``-separated, sorted) of the files of ``bundle_root`` that go into a release.

    Raises:
        FileNotFoundError: when one of :data:`REQUIRED_FILES` is missing.
    """
    root = Path(bundle_root)
    missing = [rel for rel in REQUIRED_FILES if not (root / rel).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} lacks files that every release needs: {missing}")
    found = [name for name in _ROOT_FILES if (root / name).is_file()]
    for folder in _FOLDERS:
        found += [p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file()]
    models = root / "models"
    found += [
        p.relative_to(root).as_posix()
        for p in models.iterdir()
        if p.is_file() and any(fnmatch.fnmatch(p.name, pattern) for pattern in _MODEL_PATTERNS)
    ]
    return sorted(rel for rel in set(found) if not _excluded(rel) and not (root / rel).is_symlink())


def zip_name(version: str, name: str = BUNDLE_NAME) -> str:
    """``<name>_v<version>.zip``: the file name that ``monai.bundle.download(name, version, source="github")``
    asks the release for."""
    return f"{name}_v{version}.zip"


def zip_readme(version: str, name: str = BUNDLE_NAME) -> str:
    """The zip's top-level ``README.md``: what the extracted bundle holds and how to run it. The repository's own
    README is for developers (``make``, ``scripts/``, ``tests/``, none of which the zip holds)."""
    config = "\"['configs/train.json','configs/evaluate.json']\""
    return f"""# {name} {version}: LightMedSeg hippocampus segmentation (MONAI bundle)

The model card is `docs/README.md` (data, training, performance, limitations); the licence is `LICENSE`.

| folder | what |
|---|---|
| `configs/` | `train.json`, `evaluate.json`, `inference.json`, `metadata.json`, overlays (`inference_*.json`, `tasks/`, \
`networks/`) |
| `models/` | `model.pt` (weights), `model.ts` (TorchScript) |
| `docs/` | the model card (`README.md`), its figures, the commands in detail, distribution, experiments, architecture |
| `{name}/` | the Python package the configs use; `pip install .` installs it with its dependencies |

From this folder:

```bash
pip install .
python -m monai.bundle run inference --config_file configs/inference.json --input_dir /data/images --output_dir pred
python -m monai.bundle run evaluating --config_file {config} --input_dir /data/images --label_dir /data/labels
python -m monai.bundle run training --config_file configs/train.json --dataset_dir /data/Task04_Hippocampus
```

Training writes to `runs/training/` and never replaces `models/model.pt`.
"""


def build_release_zip(
    bundle_root: str | os.PathLike, version: str, output_dir: str | os.PathLike, name: str = BUNDLE_NAME
) -> Path:
    """Write ``output_dir/<name>_v<version>.zip`` holding :func:`release_files` under ``<name>/``.

    The zip is written to a temporary name and renamed when complete, so an interrupted build never leaves a
    zip that looks finished. Returns the path of the zip.
    """
    root = Path(bundle_root)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / zip_name(version, name)
    partial = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for rel in release_files(root):
                info = zipfile.ZipInfo(f"{name}/{rel}", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
                info.create_system = 3  # unix, so that the permissions above are read back
                data = zip_readme(version, name).encode() if rel == "README.md" else (root / rel).read_bytes()
                archive.writestr(info, data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
