"""``large_files.yml``: the weights of the bundle as model-zoo "large files".

The model zoo keeps big binaries out of git and lists them in ``large_files.yml`` at the bundle root::

    large_files:
      - path: "models/model.pt"
        url: "https://github.com/<owner>/<repo>/releases/download/v0.8.1/model.pt"
        hash_val: "<sha256>"
        hash_type: "sha256"

``python -m monai.bundle download_large_files --bundle_path <bundle>`` reads it: a file that is missing is
downloaded to a temporary folder, hash-checked and only then moved to ``path``; a file that exists is hash-checked
and raises ``monai.apps.utils.HashCheckError`` when it differs (so the same command verifies an installed bundle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from .hashing import file_hash

__all__ = ["LARGE_FILES", "read_large_files", "write_large_files", "verify_large_files"]

#: bundle files published as large files (release assets of their own), in this order
LARGE_FILES = ("models/model.pt", "models/model.ts")

_HEADER = (
    "# Weights of the bundle as model-zoo large files, written by scripts/package_release.py (do not edit the\n"
    "# hashes by hand). Fetch or verify them with:\n"
    "#   python -m monai.bundle download_large_files --bundle_path <bundle folder>\n"
)


def read_large_files(path: str | os.PathLike) -> list[dict[str, str]]:
    """The ``large_files`` entries of a ``large_files.yml``; each must have ``path``, ``url``, ``hash_val`` and
    ``hash_type``.

    Raises:
        ValueError: when the file does not have the model-zoo layout.
    """
    content = yaml.safe_load(Path(path).read_text())
    entries = content.get("large_files") if isinstance(content, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty 'large_files' list")
    for entry in entries:
        missing = {"path", "url", "hash_val", "hash_type"} - set(entry or {})
        if missing:
            raise ValueError(f"{path}: entry {entry!r} lacks {sorted(missing)}")
    return entries


def write_large_files(
    bundle_root: str | os.PathLike,
    url_base: str,
    files: tuple[str, ...] = LARGE_FILES,
    hash_type: str = "sha256",
    output: str | os.PathLike | None = None,
) -> Path:
    """Write ``large_files.yml`` (default: at ``bundle_root``) with the current hash of each of ``files``.

    Each file is published under its base name next to the release zip, so its url is
    ``<url_base>/<base name>``.

    Raises:
        FileNotFoundError: when one of ``files`` is missing under ``bundle_root``.
    """
    bundle_root = Path(bundle_root)
    lines = [_HEADER.rstrip("\n"), "large_files:"]
    for rel in files:
        path = bundle_root / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: it is listed as a large file of the release")
        lines += [
            f"  - path: {json.dumps(rel)}",  # a JSON string is a double-quoted YAML scalar
            f"    url: {json.dumps(url_base.rstrip('/') + '/' + Path(rel).name)}",
            f"    hash_val: {json.dumps(file_hash(path, hash_type))}",
            f"    hash_type: {json.dumps(hash_type)}",
        ]
    output = Path(output) if output is not None else bundle_root / "large_files.yml"
    output.write_text("\n".join(lines) + "\n")
    return output


def verify_large_files(bundle_root: str | os.PathLike, large_files: str | os.PathLike | None = None) -> list[str]:
    """Problems with the large files of a bundle: missing, or a hash that is not the recorded one.

    Returns an empty list when every listed file exists with its recorded hash.
    """
    bundle_root = Path(bundle_root)
    entries = read_large_files(large_files or bundle_root / "large_files.yml")
    problems = []
    for entry in entries:
        path = bundle_root / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        actual = file_hash(path, entry["hash_type"])
        if actual != str(entry["hash_val"]).lower():
            problems.append(f"{entry['path']}: {entry['hash_type']} {actual}, large_files.yml says {entry['hash_val']}")
    return problems
