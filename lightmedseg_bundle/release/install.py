"""Install a released bundle with ``monai.bundle.download``, verified, all or nothing.

MONAI 1.6.1's ``monai.bundle.download`` downloads the zip into ``bundle_dir`` (without a checksum: it passes
``hash_val=None``) and extracts it there. When the zip is corrupt (a bad CRC in one member), extraction stops with
``zipfile.BadZipFile`` after writing the members before it, and the bad member itself almost whole: ``bundle_dir``
keeps a half-extracted ``<name>/`` folder and the bad zip. A second ``download`` call then trusts both: the zip
exists, so it is not downloaded again, and the folder is not empty, so it is not extracted again, and the call
returns as if the bundle were installed. ``monai.bundle.load`` only checks that ``models/model.pt`` exists.

:func:`install_bundle` runs the same ``monai.bundle.download`` call into a fresh staging folder inside
``bundle_dir``, then checks, before anything appears under ``bundle_dir/<name>``:

1. the zip's sha256 against the published ``<zip>.sha256`` (or a digest given on the command line);
2. every member's CRC (``zipfile.testzip``) and the bundle layout (configs, weights, metadata of that version);
3. every file of the bundle's ``large_files.yml`` (the weights) against its recorded hash.

Only then is the bundle folder renamed into place (one ``os.replace`` on the same file system). Whatever fails,
the staging folder, with the zip and anything extracted, is removed, and a :class:`BundleInstallError` says
what was wrong; an existing install is left untouched unless ``overwrite`` is asked for, and even then it is
replaced only by a verified bundle.

Command line (the arguments of ``monai.bundle download``, plus the checksum)::

    python -m lightmedseg_bundle.release.install --name lightmedseg_bundle --version 0.8.1 \\
        --bundle_dir ./bundles --url https://.../lightmedseg_bundle_v0.8.1.zip
    python -m lightmedseg_bundle.release.install --name lightmedseg_bundle --version 0.8.1 \\
        --bundle_dir ./bundles --source github --repo <owner>/<repo>/v0.8.1
    python -m lightmedseg_bundle.release.install --name lightmedseg_bundle --version 0.8.1 \\
        --bundle_dir ./bundles --zip ./lightmedseg_bundle_v0.8.1.zip          # offline

This module needs only the standard library, MONAI and its sibling ``hashing.py`` (standard library only), so the
two files can be run as a plain script, ``python install.py ...``, on a machine where the ``lightmedseg_bundle``
package is not installed yet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from urllib.parse import urlparse

if __package__:
    from .hashing import file_hash, parse_sha256
else:  # run as a plain file, `python install.py`: its sibling hashing.py is on sys.path (the script's folder)
    from hashing import file_hash, parse_sha256  # pytype: disable=import-error

__all__ = ["BundleInstallError", "checksum_url", "install_bundle", "main", "model_info_checksum"]

#: files an installed bundle must have
_REQUIRED = ("configs/metadata.json", "configs/inference.json", "models/model.pt", "LICENSE")


class BundleInstallError(RuntimeError):
    """A bundle could not be installed; nothing was left in ``bundle_dir`` by the attempt."""


def _parse_sha256(text: str, source: str) -> str:
    try:
        return parse_sha256(text)
    except ValueError as e:
        raise BundleInstallError(f"{source} holds no sha256 checksum: {text.strip()[:100]!r}") from e


def _as_url(location: str) -> str:
    """A URL for ``location``: URLs as they are, local paths as ``file://`` URLs."""
    if urlparse(location).scheme in ("http", "https", "ftp", "file"):
        return location
    return Path(location).expanduser().resolve().as_uri()


def checksum_url(
    name: str, version: str | None = None, url: str | None = None, source: str | None = None, repo: str | None = None
) -> str | None:
    """Where the ``.sha256`` of the zip that ``monai.bundle.download`` would fetch is published: next to the zip,
    ``<zip url>.sha256``. ``None`` for sources without a zip (``huggingface_hub``) or a URL MONAI builds itself."""
    if url is not None:
        return _as_url(url) + ".sha256"
    if source == "github" and repo and version:
        owner, repo_name, tag = repo.split("/")
        # the URL that monai.bundle.scripts._download_from_github builds for <name>_v<version>.zip
        return f"https://github.com/{owner}/{repo_name}/releases/download/{tag}/{name}_v{version}.zip.sha256"
    return None


def _expected_sha256(sha256: str | None, location: str | None, staging: Path, progress: bool) -> str | None:
    if sha256:
        return _parse_sha256(sha256, "--sha256")
    if location is None:
        return None
    from monai.apps.utils import download_url

    target = staging / "zip.sha256"
    try:
        download_url(url=location, filepath=target, hash_val=None, progress=progress)
        return _parse_sha256(target.read_text(), location)
    except BundleInstallError:
        raise
    except Exception as e:
        raise BundleInstallError(
            f"cannot fetch the checksum {location} ({type(e).__name__}: {e}); give it with --sha256 <hex> "
            "(sha256=...) or, only for a zip you trust, skip the check with --no_checksum (verify_checksum=False)"
        ) from e
    finally:
        target.unlink(missing_ok=True)


def model_info_checksum(model_info: str, name: str, version: str | None) -> tuple[str, str]:
    """``(hash_type, hex digest)`` of ``<name>_v<version>`` in a model-zoo style ``model_info.json`` (a path or
    URL): ``{"<name>_v<version>": {"checksum": "<hex>", "source": "<zip url>"}}``, sha256 (64 hex digits) or md5
    (32; MONAI's model zoo), or an explicit ``"hash_type"``. A record kept apart from the zip's host (the zoo's
    repository, your own records) is what makes the check prove that the zip is the published one."""
    if not version:
        raise BundleInstallError("--model_info needs --version: its entries are named <name>_v<version>")
    from monai.apps.utils import download_url

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model_info.json"
        try:
            download_url(url=_as_url(model_info), filepath=local, hash_val=None, progress=False)
            records = json.loads(local.read_text())
        except Exception as e:
            raise BundleInstallError(f"cannot read --model_info {model_info} ({type(e).__name__}: {e})") from e
    entry = records.get(f"{name}_v{version}")
    if not isinstance(entry, dict) or not isinstance(entry.get("checksum"), str):
        raise BundleInstallError(f"{model_info} has no checksum for {name}_v{version}")
    digest = entry["checksum"].strip().lower()
    hash_type = entry.get("hash_type") or {64: "sha256", 32: "md5"}.get(len(digest), "")
    if hash_type not in ("sha256", "md5") or len(digest) != {"sha256": 64, "md5": 32}[hash_type]:
        raise BundleInstallError(
            f"{model_info}: the checksum of {name}_v{version} is neither sha256 nor md5: {digest!r}"
        )
    return hash_type, digest


def _check_zip_checksum(
    archive: Path, expected: str, cause: BaseException | None = None, hash_type: str = "sha256"
) -> None:
    actual = file_hash(archive, hash_type)
    if actual != expected:
        detail = "" if cause is None else f" (extracting it failed: {type(cause).__name__}: {cause})"
        raise BundleInstallError(
            f"{hash_type} of the downloaded zip is {actual}, the expected checksum is {expected}: the download is "
            f"corrupt or truncated, or the zip is not the published one{detail}"
        ) from cause


def _check_bundle(bundle: Path, name: str, version: str | None) -> list[str]:
    """Layout, version and large-file hashes of an extracted bundle; raises :class:`BundleInstallError`.
    Returns what was verified, for the closing summary."""
    from monai.apps.utils import check_hash
    from monai.bundle import ConfigParser

    if not bundle.is_dir():
        raise BundleInstallError(
            f"the archive has no top-level folder {name}/ (found: {sorted(os.listdir(bundle.parent))})"
        )
    missing = [rel for rel in _REQUIRED if not (bundle / rel).is_file()]
    if missing:
        raise BundleInstallError(f"the downloaded bundle lacks {missing}")
    meta_version = json.loads((bundle / "configs" / "metadata.json").read_text()).get("version")
    if version is not None and meta_version != version:
        raise BundleInstallError(f"asked for version {version}, the downloaded bundle is version {meta_version}")
    large = [p for p in sorted(bundle.glob("large_files*")) if p.suffix in (".yml", ".yaml", ".json")]
    checked: list[str] = []
    for config in large:
        for entry in ConfigParser.load_config_file(str(config)).get("large_files", []):
            path = bundle / entry["path"]
            if not path.is_file():
                raise BundleInstallError(f"{entry['path']} (listed in {config.name}) is missing from the bundle")
            if entry.get("hash_val") and not check_hash(path, entry["hash_val"], entry.get("hash_type", "sha256")):
                raise BundleInstallError(
                    f"{entry['path']}: its {entry.get('hash_type', 'sha256')} is not the one recorded in "
                    f"{config.name}; the download is corrupt"
                )
            checked.append(entry["path"])
    return [f"the layout and version {meta_version}"] + ([f"the hashes of {', '.join(checked)}"] if checked else [])


def install_bundle(
    bundle_dir: str | os.PathLike,
    name: str = "lightmedseg_bundle",
    version: str | None = None,
    url: str | None = None,
    source: str | None = None,
    repo: str | None = None,
    sha256: str | None = None,
    verify_checksum: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    model_info: str | None = None,
) -> Path:
    """Download ``name`` with ``monai.bundle.download``, verify it, and move it to ``bundle_dir/name``.

    Args:
        bundle_dir: folder that receives ``<name>/`` (created if missing).
        name: bundle name, the top-level folder of the zip.
        version: version to install; checked against the downloaded ``configs/metadata.json``. Required with
            ``source="github"`` (MONAI builds the file name ``<name>_v<version>.zip`` from it).
        url: URL of the zip, or a local zip file (offline install). Takes precedence over ``source``.
        source, repo: as for ``monai.bundle.download`` (``"github"`` with ``repo="owner/repo/tag"``,
            ``"huggingface_hub"`` with ``repo="owner/repo"``).
        sha256: expected sha256 of the zip. Default: read from ``model_info``, else from ``<zip url>.sha256``.
        model_info: path or URL of a model-zoo style ``model_info.json`` holding the zip's checksum
            (:func:`model_info_checksum`): a record kept apart from the zip's host.
        verify_checksum: ``False`` skips the zip checksum (the weights are still checked against
            ``large_files.yml``); only for zips you trust.
        overwrite: replace an installed bundle (only by one that passed every check).
        progress: show MONAI's download progress bars.

    Returns:
        the installed bundle folder, ``bundle_dir/name``.

    Raises:
        BundleInstallError: the download failed, or the zip or the bundle in it is not what was published. The
            attempt left nothing in ``bundle_dir``.
        FileExistsError: ``bundle_dir/name`` exists and ``overwrite`` is false.
    """
    from monai.bundle import download

    if url is None and source is None:
        raise ValueError("give the zip's url (or a local zip file) or a source (with repo)")
    if source == "github" and url is None and not version:
        raise ValueError("source='github' needs the version: the release asset is <name>_v<version>.zip")
    bundle_dir = Path(bundle_dir)
    final = bundle_dir / name
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; remove it or install with overwrite=True (--overwrite)")
    bundle_dir.mkdir(parents=True, exist_ok=True)
    url = None if url is None else _as_url(url)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-install-", dir=bundle_dir))
    try:
        expected, hash_type, origin, verified = None, "sha256", None, []
        if verify_checksum and (url is not None or source != "huggingface_hub"):  # a Hub snapshot has no zip
            if model_info and not sha256:
                (hash_type, expected), origin = model_info_checksum(model_info, name, version), model_info
            else:
                published = checksum_url(name, version, url, source, repo)
                origin = "--sha256" if sha256 else published
                expected = _expected_sha256(sha256, published, staging, progress)
            if expected is None:
                raise BundleInstallError("no checksum to verify the zip against: give sha256=... (--sha256)")
        kwargs = {"url": url} if url is not None else {"source": source, "repo": repo}
        try:
            with warnings.catch_warnings():
                # monai.apps.utils.download_url warns "file integrity is NOT verified" for the hash-less download
                # of monai.bundle.download; the zip is verified below, and the summary says what was verified
                warnings.filterwarnings("ignore", message=r".*file integrity is NOT verified")
                download(name=name, version=version, bundle_dir=str(staging), progress=progress, **kwargs)
        except Exception as e:
            # a zip that arrived whole but does not extract: say first whether it is the published one
            zips = sorted(staging.glob("*.zip"))
            if expected is not None and len(zips) == 1:
                _check_zip_checksum(zips[0], expected, cause=e, hash_type=hash_type)
            raise BundleInstallError(
                f"monai.bundle.download of {name} {version or ''} from {url or f'{source}:{repo}'} failed: "
                f"{type(e).__name__}: {e}"
            ) from e
        zips = sorted(staging.glob("*.zip"))
        if expected is not None:
            if len(zips) != 1:
                raise BundleInstallError(f"expected one downloaded zip in the staging folder, found {zips}")
            _check_zip_checksum(zips[0], expected, hash_type=hash_type)
            verified.append(f"the zip's {hash_type} {expected[:16]}... matches {origin}")
        for archive in zips:
            with zipfile.ZipFile(archive) as z:
                bad = z.testzip()
            if bad is not None:
                raise BundleInstallError(f"{archive.name}: member {bad} fails its CRC check; the download is corrupt")
            archive.unlink()
            verified.append("every member's CRC")
        verified += _check_bundle(staging / name, name, version)
        previous = None
        if final.exists():  # overwrite: the old install moves aside only now that the new one passed every check
            previous = staging / f"{name}.previous"
            os.replace(final, previous)
        try:
            os.replace(staging / name, final)
        except BaseException:
            if previous is not None:
                os.replace(previous, final)
            raise
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, (BundleInstallError, FileExistsError, ValueError)) or not isinstance(e, Exception):
            raise
        raise BundleInstallError(f"installing {name} failed: {type(e).__name__}: {e}") from e
    shutil.rmtree(staging, ignore_errors=True)
    print(f"verified: {'; '.join(verified)}", file=sys.stderr)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightmedseg_bundle.release.install",
        description="Install a released MONAI bundle with monai.bundle.download, verified, all or nothing.",
    )
    parser.add_argument("--name", default="lightmedseg_bundle", help="bundle name (default: %(default)s)")
    parser.add_argument("--version", help="bundle version, e.g. 0.8.1 (checked against the bundle's metadata)")
    parser.add_argument("--bundle_dir", required=True, help="folder that receives <name>/")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="URL of <name>_v<version>.zip")
    where.add_argument("--zip", help="a local <name>_v<version>.zip (offline install; checksum from <zip>.sha256)")
    where.add_argument("--source", choices=["github", "huggingface_hub"], help="as for monai.bundle download")
    parser.add_argument("--repo", help="owner/repo/tag for github, owner/repo for huggingface_hub")
    parser.add_argument("--sha256", help="expected sha256 of the zip (default: read from <zip url>.sha256)")
    parser.add_argument(
        "--model_info",
        help="model_info.json (path or URL) holding the zip's checksum, kept apart "
        "from the zip's host, e.g. the model zoo's models/model_info.json",
    )
    parser.add_argument("--no_checksum", action="store_true", help="do not check the zip's sha256 (trusted zips only)")
    parser.add_argument("--overwrite", action="store_true", help="replace an installed bundle")
    parser.add_argument("--progress", action="store_true", help="show download progress bars")
    args = parser.parse_args(argv)
    try:
        path = install_bundle(
            bundle_dir=args.bundle_dir,
            name=args.name,
            version=args.version,
            url=args.url or args.zip,
            source=args.source,
            repo=args.repo,
            sha256=args.sha256,
            verify_checksum=not args.no_checksum,
            overwrite=args.overwrite,
            progress=args.progress,
            model_info=args.model_info,
        )
    except (BundleInstallError, FileExistsError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"installed {args.name} {args.version or ''} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
