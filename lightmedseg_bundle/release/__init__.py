"""Release packaging and installation of the bundle for the MONAI model zoo.

Each module holds one concern:

- :mod:`.hashing`: digests of files and the ``<file>.sha256`` checksum files published next to release assets.
- :mod:`.large_files`: ``large_files.yml`` in the model-zoo format (``path``, ``url``, ``hash_val``, ``hash_type``).
- :mod:`.archive`: which files make the bundle and the deterministic ``<name>_v<version>.zip`` that
  ``monai.bundle.download`` extracts (one top-level ``<name>/`` folder).
- :mod:`.install`: a guarded install around ``monai.bundle.download`` that verifies the zip and the weights
  before the bundle appears in ``bundle_dir``, and leaves nothing behind when a download is corrupt or
  truncated (``python -m lightmedseg_bundle.release.install``). It only needs the standard library, MONAI and
  :mod:`.hashing`.

``scripts/package_release.py`` drives the packaging; ``docs/distribution.md`` describes the whole procedure.
"""

from .archive import BUNDLE_NAME, build_release_zip, release_files, zip_name
from .hashing import file_hash, read_sha256_file, write_sha256_file
from .large_files import LARGE_FILES, read_large_files, verify_large_files, write_large_files

__all__ = [
    "BUNDLE_NAME",
    "LARGE_FILES",
    "build_release_zip",
    "file_hash",
    "read_large_files",
    "read_sha256_file",
    "release_files",
    "verify_large_files",
    "write_large_files",
    "write_sha256_file",
    "zip_name",
]
