"""Release packaging: ``scripts/package_release.py``, the zip ``monai.bundle.download`` installs, its checksum,
``large_files.yml`` and the TorchScript export.

The script runs on a temporary copy of the bundle (it rewrites ``models/model.ts`` and ``large_files.yml`` of the
bundle it packages), so the tests never touch the checkout. ``build_release`` is shared with
``test_release_download.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, REPO_ROOT

from lightmedseg_bundle.release import (
    BUNDLE_NAME,
    LARGE_FILES,
    build_release_zip,
    file_hash,
    read_large_files,
    read_sha256_file,
    verify_large_files,
    zip_name,
)

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

SCRIPT = REPO_ROOT / "scripts" / "package_release.py"
VERSION = json.loads((CONFIGS / "metadata.json").read_text())["version"]
WEIGHTS = REPO_ROOT / "models" / "model.pt"

needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"{WEIGHTS} absent: no trained weights to package")

#: what a copy of the bundle needs to be packaged (what package_release reads)
_COPIED_FOLDERS = ("configs", "docs", "lightmedseg_bundle")
_COPIED_FILES = (
    "LICENSE",
    "metadata.json",
    "large_files.yml",
    "pyproject.toml",
    "README.md",
    "models/model.pt",
    "models/model.ts",
)


def release_env() -> dict[str, str]:
    """Environment of the release subprocesses: one thread (the machine is shared), quiet warnings."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    return env


def copy_bundle(destination: Path) -> Path:
    """A copy of the checkout's bundle files (no caches, no checkpoints) at ``destination``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in _COPIED_FOLDERS:
        shutil.copytree(REPO_ROOT / folder, destination / folder, ignore=ignore)
    for rel in _COPIED_FILES:
        if (REPO_ROOT / rel).is_file():
            (destination / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO_ROOT / rel, destination / rel)
    return destination


def run_package_release(bundle: Path, dist: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--version",
        VERSION,
        "--output",
        str(dist),
        "--bundle_root",
        str(bundle),
        *extra,
    ]
    proc = subprocess.run(cmd, env=release_env(), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def build_release(root: Path, skip_export: bool = False) -> dict[str, Path]:
    """Package a copy of the bundle (``checkout``) under ``root``: ``{"bundle": the zip extracted, "checkout": the
    packaged copy, "dist": assets, "zip": release zip}``."""
    if not WEIGHTS.is_file():
        pytest.skip(f"{WEIGHTS} absent: no trained weights to package")
    checkout, dist = copy_bundle(root / "bundle_copy"), root / "dist"
    proc = run_package_release(checkout, dist, *(["--skip_export"] if skip_export else []))
    archive = dist / zip_name(VERSION)
    with zipfile.ZipFile(archive) as extracted:
        extracted.extractall(root / "released")
    return {"bundle": root / "released" / BUNDLE_NAME, "checkout": checkout, "dist": dist, "zip": archive,
            "stdout": proc.stdout}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    """One full packaging run, ``ckpt_export`` included."""
    return build_release(tmp_path_factory.mktemp("release"), skip_export=False)


def test_zip_has_the_layout_monai_bundle_download_extracts(release):
    with zipfile.ZipFile(release["zip"]) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert all(n.startswith(f"{BUNDLE_NAME}/") for n in names), "one top-level folder, named like the bundle"
        assert names == sorted(names), "deterministic member order"
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        files = {n[len(BUNDLE_NAME) + 1 :] for n in names}
        for rel in ("configs/metadata.json", "configs/train.json", "configs/evaluate.json", "configs/inference.json",
                    "configs/logging.conf", "models/model.pt", "models/model.ts", "docs/README.md", "LICENSE",
                    "metadata.json", "large_files.yml", "lightmedseg_bundle/networks/lightmedseg.py",
                    "pyproject.toml"):  # fmt: skip
            assert rel in files, rel
        assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or re.search(r"checkpoint_.*\.pt$", f)]
        assert not [f for f in files if f.startswith(("eval/", "dist/", ".venv", "models/.export"))]
        # the weights are the checkout's, byte for byte
        assert archive.read(f"{BUNDLE_NAME}/models/model.pt") == WEIGHTS.read_bytes()
        meta = json.loads(archive.read(f"{BUNDLE_NAME}/configs/metadata.json"))
        assert meta["version"] == VERSION
        assert archive.read(f"{BUNDLE_NAME}/metadata.json") == archive.read(f"{BUNDLE_NAME}/configs/metadata.json")
        # the zip's own README: nothing of the repository's developer set-up, and every file it names is there
        readme = archive.read(f"{BUNDLE_NAME}/README.md").decode()
        assert not any(word in readme for word in ("make ", "scripts/", "tests/", "monailabel/"))
        named = set(re.findall(r"`((?:configs|models|docs)/[\w./-]+\.(?:json|pt|ts|md))`", readme))
        assert named and named <= files, named - files
        # the model card: nothing that only the repository has, and every page or figure it links to is in the zip
        card = archive.read(f"{BUNDLE_NAME}/docs/README.md").decode()
        assert not any(word in card for word in ("make ", "scripts/", "tests/", "monailabel/", "pip install -e"))
        linked = {f"docs/{target}" for target in re.findall(r"\]\(([\w./-]+)\)", card)}
        assert linked and linked <= files, linked - files


def test_checksum_large_files_and_assets_are_consistent(release):
    dist, bundle = release["dist"], release["bundle"]
    checksum = dist / f"{zip_name(VERSION)}.sha256"
    assert checksum.read_text() == f"{file_hash(release['zip'])}  {zip_name(VERSION)}\n"  # sha256sum -c format
    assert read_sha256_file(checksum) == file_hash(release["zip"])
    entries = read_large_files(bundle / "large_files.yml")
    assert [e["path"] for e in entries] == list(LARGE_FILES)
    for entry in entries:
        assert set(entry) == {"path", "url", "hash_val", "hash_type"} and entry["hash_type"] == "sha256"
        assert entry["url"].endswith(f"/releases/download/v{VERSION}/{Path(entry['path']).name}")
        asset = dist / Path(entry["path"]).name  # published next to the zip, under the url's file name
        assert file_hash(asset) == entry["hash_val"] == file_hash(bundle / entry["path"])
    assert verify_large_files(bundle) == []
    with zipfile.ZipFile(release["zip"]) as archive:
        assert archive.read(f"{BUNDLE_NAME}/large_files.yml") == (bundle / "large_files.yml").read_bytes()


def test_packaging_writes_only_to_its_output_folder(release):
    for rel in ("models/model.ts", "large_files.yml", "configs/metadata.json", "README.md"):
        assert (release["checkout"] / rel).read_bytes() == (REPO_ROOT / rel).read_bytes(), rel
    assert sorted(p.name for p in release["dist"].iterdir()) == sorted(
        [zip_name(VERSION), f"{zip_name(VERSION)}.sha256", "model.pt", "model.ts"]
    )


def test_zip_is_byte_for_byte_reproducible(release, tmp_path):
    again = build_release_zip(release["bundle"], VERSION, tmp_path)
    assert again.read_bytes() == release["zip"].read_bytes()


def test_exported_torchscript_matches_the_state_dict(release):
    from monai.bundle import ConfigParser
    from monai.data import load_net_with_metadata

    assert "ckpt_export network_def" in release["stdout"]
    scripted, meta, extra = load_net_with_metadata(str(release["bundle"] / "models" / "model.ts"), map_location="cpu")
    assert meta == json.loads((CONFIGS / "metadata.json").read_text())
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    net.eval()
    x = torch.randn(1, 1, 48, 64, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x), rtol=1e-4, atol=1e-4)


@needs_weights
def test_checked_in_torchscript_is_what_packaging_exports_byte_for_byte(release):
    """The export holds no path of the machine or folder it ran in, so the checked-in ``models/model.ts`` (exported
    in the checkout) is byte for byte what packaging a copy elsewhere makes of ``models/model.pt``."""
    hint = f"run: python scripts/package_release.py --version {VERSION} --output dist/"
    exported = (release["bundle"] / "models" / "model.ts").read_bytes()
    for marker in (str(release["bundle"]).encode(), str(REPO_ROOT).encode(), b"site-packages"):
        assert marker not in exported
    assert exported == (REPO_ROOT / "models" / "model.ts").read_bytes(), f"models/model.ts is stale; {hint}"


def test_release_refuses_another_version_than_the_metadata(tmp_path):
    bundle = copy_bundle(tmp_path / "bundle")
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--version",
        "99.0.0",
        "--output",
        str(tmp_path / "dist"),
        "--bundle_root",
        str(bundle),
    ]
    proc = subprocess.run(
        cmd, env=release_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"is version {VERSION!r}, not '99.0.0'" in proc.stderr
    assert not (tmp_path / "dist").exists()


def test_release_refuses_a_package_version_other_than_the_bundle_version(tmp_path):
    bundle = copy_bundle(tmp_path / "bundle")
    package_init = bundle / "lightmedseg_bundle" / "__init__.py"
    package_init.write_text(
        package_init.read_text().replace(f"__version__ = {json.dumps(VERSION)}", '__version__ = "0.0.1"')
    )
    proc = run_package_release(bundle, tmp_path / "dist", check=False)
    assert proc.returncode == 1
    assert f"gives the package version '0.0.1', not {VERSION!r}" in proc.stderr
    assert not (tmp_path / "dist").exists()


def test_package_version_is_the_bundle_version():
    """``pip install <bundle folder>`` reports ``lightmedseg_bundle.__version__`` (``pyproject.toml`` reads it)."""
    import lightmedseg_bundle

    assert lightmedseg_bundle.__version__ == VERSION, "bump lightmedseg_bundle.__version__ with the bundle's version"


@needs_weights
def test_checked_in_large_files_and_torchscript_match_the_checked_in_weights():
    """``large_files.yml`` and ``models/model.ts`` of the checkout describe ``models/model.pt`` as it is now."""
    from monai.data import load_net_with_metadata

    hint = f"run: python scripts/package_release.py --version {VERSION} --output dist/"
    assert (REPO_ROOT / "large_files.yml").is_file(), f"large_files.yml is missing; {hint}"
    assert (REPO_ROOT / "models" / "model.ts").is_file(), f"models/model.ts is missing; {hint}"
    problems = verify_large_files(REPO_ROOT)
    assert not problems, f"large_files.yml is stale ({problems}); {hint}"
    _, meta, _ = load_net_with_metadata(str(REPO_ROOT / "models" / "model.ts"), map_location="cpu")
    assert meta == json.loads(
        (CONFIGS / "metadata.json").read_text()
    ), f"models/model.ts embeds an old metadata.json; {hint}"
