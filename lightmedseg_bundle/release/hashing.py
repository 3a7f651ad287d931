"""Digests of release files and the ``sha256sum``-format checksum files published next to them.

Standard library only: :mod:`.install` imports it also when it runs as a plain file (``python install.py``) on a
machine without this package.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["file_hash", "write_sha256_file", "read_sha256_file", "parse_sha256"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def file_hash(path: str | os.PathLike, hash_type: str = "sha256") -> str:
    """Hex digest of a file with ``hash_type`` (``md5``, ``sha1``, ``sha256``, ``sha512``, as MONAI supports), read
    in 1 MiB chunks."""
    digest = hashlib.new(hash_type.lower())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256_file(path: str | os.PathLike) -> Path:
    """Write ``<path>.sha256`` holding ``<hex>  <file name>`` (the format of ``sha256sum``, so that
    ``sha256sum -c lightmedseg_bundle_v0.8.1.zip.sha256`` checks the zip). Returns the checksum file."""
    path = Path(path)
    out = path.with_name(path.name + ".sha256")
    out.write_text(f"{file_hash(path)}  {path.name}\n")
    return out


def parse_sha256(text: str) -> str:
    """The hex digest of a ``sha256sum`` line (``<hex>  <name>``) or of a bare digest.

    Raises:
        ValueError: when the text holds no 64-digit hex digest.
    """
    fields = text.strip().split()
    digest = fields[0].lower() if fields else ""
    if not _HEX64.match(digest):
        raise ValueError(f"not a sha256 checksum: {text.strip()[:100]!r}")
    return digest


def read_sha256_file(path: str | os.PathLike) -> str:
    """The digest stored in a ``.sha256`` file (see :func:`parse_sha256`)."""
    return parse_sha256(Path(path).read_text())
