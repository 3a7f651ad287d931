"""Build the release assets of the bundle: the zip that ``monai.bundle.download`` installs, its sha256, and the
weights as model-zoo large files.

    python scripts/package_release.py --version 0.8.1 --output dist/

Everything is built in a staging copy of the bundle's release files inside ``<output>`` and written to
``<output>`` only: the bundle folder itself is never changed (``--update_checkout`` copies the release's
``models/model.ts`` and ``large_files.yml`` back into it, when asked). Steps, in this order (each one needs the
previous one):

1. checks: ``configs/metadata.json`` has this version (and a changelog entry for it) and is identical to the
   root ``metadata.json``; ``lightmedseg_bundle.__version__`` (the package version that ``pyproject.toml`` reads and
   ``pip install <bundle folder>`` reports) is the same; ``models/model.pt`` is a state dict.
2. ``models/model.ts``: exported from ``models/model.pt`` with MONAI's own command (so it embeds the current
   ``metadata.json`` and ``inference.json``)::

       python -m monai.bundle ckpt_export network_def --filepath models/model.ts --ckpt_file models/model.pt \\
           --meta_file configs/metadata.json --config_file configs/inference.json

   without the members that hold the export machine's paths (``without_machine_paths``), then loaded back and
   compared with the eager network on a random input (``--skip_export`` keeps the present ``model.ts``, still
   compared).
3. ``large_files.yml``: the sha256 of ``models/model.pt`` and ``models/model.ts``, with their release URLs
   ``https://github.com/<repo>/releases/download/<tag>/<file>``.
4. ``<output>/lightmedseg_bundle_v<version>.zip`` (top-level ``lightmedseg_bundle/`` folder, deterministic file
   order and timestamps; see ``lightmedseg_bundle/release/archive.py`` for what goes in and what never does),
   ``<zip>.sha256`` next to it, and ``model.pt`` / ``model.ts`` as separate assets (the large-file URLs).

Upload every file of ``<output>`` to the GitHub release ``<tag>`` of ``<repo>``; see ``docs/distribution.md``.
``--bundle_root`` packages another copy of the bundle (the tests package a temporary copy).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lightmedseg_bundle.release import (  # noqa: E402
    BUNDLE_NAME,
    LARGE_FILES,
    build_release_zip,
    file_hash,
    release_files,
    write_large_files,
    write_sha256_file,
)

#: release files the checkout keeps a copy of: packaging reports when they differ, --update_checkout refreshes them
CHECKED_IN = ("models/model.ts", "large_files.yml")

#: GitHub repository (owner/name) whose releases host the assets; the tag is v<version>
DEFAULT_REPO = "lightmedseg/lightmedseg_bundle"


def _fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def check_metadata(bundle_root: Path, version: str) -> dict:
    meta_path = bundle_root / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    if meta.get("version") != version:
        _fail(f"{meta_path} is version {meta.get('version')!r}, not {version!r}: bump the version there first")
    if version not in meta.get("changelog", {}):
        _fail(f"{meta_path}: the changelog has no entry for {version}")
    root_meta = bundle_root / "metadata.json"
    if root_meta.is_file() and root_meta.read_bytes() != meta_path.read_bytes():
        _fail(f"{root_meta} differs from {meta_path}; they must be the same file")
    package_init = bundle_root / "lightmedseg_bundle" / "__init__.py"
    package_version = re.search(r'^__version__\s*=\s*"([^"]*)"', package_init.read_text(), re.MULTILINE)
    if package_version is None or package_version.group(1) != version:
        found = package_version.group(1) if package_version else None
        _fail(f"{package_init} gives the package version {found!r}, not {version!r}: bump it with the bundle's")
    return meta


def check_state_dict(bundle_root: Path) -> None:
    import torch

    path = bundle_root / "models" / "model.pt"
    if not path.is_file():
        _fail(f"{path} not found: put the trained weights there first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        _fail(f"{path} is not a bare state dict (name -> tensor), as monai.bundle.load and the configs expect")


MACHINE_DEPENDENT_MEMBERS = (".debug_pkl", "/.data/serialization_id")
"""TorchScript archive members that depend on where the export ran: each ``*.debug_pkl`` holds the absolute paths
of the source files the network was scripted from (the checkout's, the virtual environment's), and
``.data/serialization_id`` is a hash over all members, those included. Both are optional for ``torch.jit.load``."""


def without_machine_paths(source: Path, target: Path) -> None:
    """Copy the TorchScript archive ``source`` to ``target`` without :data:`MACHINE_DEPENDENT_MEMBERS`, so that the
    same weights and code give the same bytes wherever they are exported (errors inside the scripted code then
    show TorchScript code instead of the original source lines)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as stripped:
        for info in original.infolist():
            if not info.filename.endswith(MACHINE_DEPENDENT_MEMBERS):
                stripped.writestr(info, original.read(info.filename))


def export_torchscript(bundle_root: Path, python: str) -> Path:
    """``models/model.ts`` from ``models/model.pt`` with ``monai.bundle ckpt_export``, written atomically."""
    models = bundle_root / "models"
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=models))
    try:
        exported = scratch / "model.ts"  # the archive inside the .ts takes its folder name from the file name
        cmd = [
            python, "-m", "monai.bundle", "ckpt_export", "network_def",
            "--filepath", str(exported),
            "--ckpt_file", "models/model.pt",
            "--meta_file", "configs/metadata.json",
            "--config_file", "configs/inference.json",
        ]  # fmt: skip
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONHASHSEED"] = "0"  # the scripted code lists a module's constants in set order: fixed, same bytes
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(bundle_root), env.get("PYTHONPATH", "")) if p)
        print("$ " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=bundle_root, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not exported.is_file():
            _fail(f"ckpt_export failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        without_machine_paths(exported, scratch / "stripped.ts")
        os.replace(scratch / "stripped.ts", models / "model.ts")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return models / "model.ts"


def check_torchscript(bundle_root: Path) -> float:
    """Load ``model.ts`` and compare it with the eager network of ``inference.json`` holding ``model.pt``."""
    import torch
    from monai.bundle import ConfigParser
    from monai.data import load_net_with_metadata

    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle_root / "models" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    scripted, meta, _ = load_net_with_metadata(str(bundle_root / "models" / "model.ts"), map_location="cpu")
    on_disk = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    if meta.get("version") != on_disk.get("version") or meta.get("eval_metrics") != on_disk.get("eval_metrics"):
        _fail("models/model.ts embeds another metadata.json than configs/metadata.json; export it again")
    x = torch.randn(
        1, int(parser.get_parsed_content("in_channels")), 32, 48, 32, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        diff = float((scripted(x) - net(x)).abs().max())
    if diff > 1e-4:
        _fail(f"models/model.ts differs from models/model.pt by up to {diff:.2e} on a random input")
    return diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", required=True, help="bundle version, as in configs/metadata.json")
    parser.add_argument("--output", default="dist", help="folder for the release assets (default: %(default)s)")
    parser.add_argument("--bundle_root", "--bundle-root", default=str(REPO_ROOT), help="bundle to package")
    parser.add_argument("--repo", default=DEFAULT_REPO, help="GitHub owner/name hosting the release (%(default)s)")
    parser.add_argument("--tag", help="release tag (default: v<version>)")
    parser.add_argument("--skip_export", "--skip-export", action="store_true", help="keep the present model.ts")
    parser.add_argument("--python", default=sys.executable, help="interpreter for ckpt_export (default: this one)")
    parser.add_argument(
        "--update_checkout",
        "--update-checkout",
        action="store_true",
        help=f"copy the release's {' and '.join(CHECKED_IN)} into the bundle (nothing else is written there)",
    )
    args = parser.parse_args()

    bundle_root = Path(args.bundle_root).resolve()
    output = Path(args.output).resolve()
    tag = args.tag or f"v{args.version}"
    url_base = f"https://github.com/{args.repo}/releases/download/{tag}"

    check_metadata(bundle_root, args.version)
    check_state_dict(bundle_root)
    output.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=output))  # the bundle as released; the checkout stays as is
    try:
        for rel in release_files(bundle_root):
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle_root / rel, stage / rel)
        if not args.skip_export:
            export_torchscript(stage, args.python)
        diff = check_torchscript(stage)
        print(f"models/model.ts matches models/model.pt (max abs difference {diff:.1e})")
        write_large_files(stage, url_base)
        archive = build_release_zip(stage, args.version, output, BUNDLE_NAME)
        checksum = write_sha256_file(archive)
        assets = [archive, checksum]
        for rel in LARGE_FILES:
            target = output / Path(rel).name
            shutil.copyfile(stage / rel, target)
            assets.append(target)
        print(f"{archive.name}: {len(release_files(stage))} files under {BUNDLE_NAME}/, sha256 {file_hash(archive)}")
        stale = [rel for rel in CHECKED_IN if (bundle_root / rel).read_bytes() != (stage / rel).read_bytes()]
        if stale and args.update_checkout:
            for rel in stale:
                shutil.copyfile(stage / rel, bundle_root / rel)
            print(f"updated the checkout's {', '.join(stale)} to the release's")
        elif stale:
            print(f"note: the checkout's {', '.join(stale)} differ from the release's; --update_checkout copies them")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    print(f"release assets for https://github.com/{args.repo}/releases/tag/{tag}:")
    for asset in assets:
        print(f"  {asset}  ({asset.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
