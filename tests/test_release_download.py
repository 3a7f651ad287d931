"""Distribution through the zoo: MONAI's own download code against real HTTP(S) servers on 127.0.0.1.

Nothing of MONAI is mocked. The release assets built by ``scripts/package_release.py`` (from a copy of the
bundle) are served by ``http.server`` on 127.0.0.1:

- ``url=`` downloads: ``monai.bundle.download(name, version, bundle_dir, url=...)``, ``monai.bundle.load`` of the
  downloaded bundle (network and TorchScript) and with ``args_file`` giving the url (``load`` has no ``url``
  argument in MONAI 1.6.1);
- ``source="github"``: MONAI builds ``https://github.com/<owner>/<repo>/releases/download/<tag>/<name>_v<version>.zip``
  itself and fetches it with urllib, which honours ``https_proxy``. The test runs the documented commands in
  subprocesses whose ``https_proxy`` is a local CONNECT proxy that answers for github.com only, with a
  certificate from a throw-away CA given to OpenSSL by ``SSL_CERT_FILE``; it serves the release assets under
  their GitHub release paths and records which paths MONAI asked for;
- ``download_large_files`` with its hash checks;
- corrupt, truncated and mis-checksummed downloads: MONAI 1.6.1's behaviour, and the guarded installer
  (``lightmedseg_bundle.release.install``) that leaves nothing behind;
- a fresh install from the release zip, then the bundle's own inference command run from the installed folder
  (its ``lightmedseg_bundle`` package, its configs, its weights) on the validation cases, scored against
  their ground truth and the documented Dice.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import http.server
import json
import os
import shutil
import socketserver
import ssl
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, needs_hippocampus
from test_release_package import VERSION, WEIGHTS, build_release, release_env

from lightmedseg_bundle.release import BUNDLE_NAME, zip_name
from lightmedseg_bundle.release.install import BundleInstallError, install_bundle
from lightmedseg_bundle.release.install import main as install_main

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

#: the GitHub repository the tests pretend hosts the release (any owner/name works: the proxy answers for all)
GITHUB_REPO = "lightmedseg/lightmedseg_bundle"
GITHUB_TAG = f"v{VERSION}"


# --- servers ------------------------------------------------------------------------------------------------


class ReleaseHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the release assets of ``directory``.

    Besides plain paths (``/<file>``), GitHub release paths (``/<owner>/<repo>/releases/download/<tag>/<file>``)
    and two kinds of broken transfer: ``/truncated/<file>`` announces the full ``Content-Length`` and closes the
    connection after half the bytes; ``/unsized/<file>`` sends no ``Content-Length`` and stops after half the
    bytes (a cut no client can detect). Every requested path is recorded in ``server.requests``.
    """

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass

    def do_GET(self):  # noqa: N802 (http.server's handler names)
        self.server.requests.append(self.path)
        parts = self.path.lstrip("/").split("/")
        if len(parts) == 6 and parts[2:4] == ["releases", "download"]:
            self.path = "/" + parts[5]
        elif parts[0] in ("truncated", "unsized") and len(parts) == 2:
            data = (Path(self.directory) / parts[1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if parts[0] == "truncated":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()


class GitHubProxyHandler(http.server.BaseHTTPRequestHandler):
    """An HTTPS proxy that answers ``CONNECT github.com:443`` itself, as github.com (a certificate of the test CA),
    and serves the release assets there with :class:`ReleaseHandler`; anything else is refused (403), so the
    clients it serves reach no real host."""

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_CONNECT(self):  # noqa: N802 (http.server's handler names)
        self.server.connects.append(self.path)
        if self.path != "github.com:443":
            self.send_error(403, "this test proxy only stands in for github.com")
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.server.release_handler(tls, self.client_address, self.server)
        finally:
            tls.close()

    def do_GET(self):  # noqa: N802 (http.server's handler names)
        self.send_error(403, "plain HTTP is not proxied here")

    def finish(self):
        try:
            super().finish()
        except OSError:  # the socket went to the TLS wrapper
            pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(server: _Server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    """Release assets of a copy of the bundle (the checkout's ``models/model.ts``, checked against model.pt)."""
    built = build_release(tmp_path_factory.mktemp("release"), skip_export=(REPO_ROOT / "models" / "model.ts").is_file())
    dist = built["dist"]
    # a copy whose models/model.pt member has 16 zeroed bytes in its compressed data: a bad CRC, the rest intact
    data = bytearray(built["zip"].read_bytes())
    with zipfile.ZipFile(built["zip"]) as archive:
        info = archive.getinfo(f"{BUNDLE_NAME}/models/model.pt")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    data[start : start + 16] = bytes(16)
    (dist / "corrupt").mkdir()
    (dist / "corrupt" / zip_name(VERSION)).write_bytes(bytes(data))
    shutil.copyfile(dist / f"{zip_name(VERSION)}.sha256", dist / "corrupt" / f"{zip_name(VERSION)}.sha256")
    # a well-formed zip of the same name whose published checksum is another file's
    (dist / "mismatch").mkdir()
    shutil.copyfile(built["zip"], dist / "mismatch" / zip_name(VERSION))
    (dist / "mismatch" / f"{zip_name(VERSION)}.sha256").write_text(f"{'0' * 64}  {zip_name(VERSION)}\n")
    # a forged release: a valid bundle zip with one more member, published with its own matching checksum
    (dist / "forged").mkdir()
    forged = dist / "forged" / zip_name(VERSION)
    shutil.copyfile(built["zip"], forged)
    with zipfile.ZipFile(forged, "a") as archive:
        archive.writestr(f"{BUNDLE_NAME}/configs/extra.json", "{}")
    digest = hashlib.sha256(forged.read_bytes()).hexdigest()
    (dist / "forged" / f"{zip_name(VERSION)}.sha256").write_text(f"{digest}  {zip_name(VERSION)}\n")
    return built


@pytest.fixture(scope="module")
def server(release):
    """``http.server`` serving the release assets on a free port of 127.0.0.1; shut down after the module."""
    httpd = _Server(("127.0.0.1", 0), functools.partial(ReleaseHandler, directory=str(release["dist"])))
    httpd.requests = []
    thread = _serve(httpd)
    try:
        yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "httpd": httpd}
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_proxy_for_localhost(monkeypatch):
    """Requests to the local server go direct even where the environment sets a proxy."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


def _zip_url(server, prefix: str = "") -> str:
    return f"{server['url']}/{prefix}{zip_name(VERSION)}"


# --- url= downloads and load -------------------------------------------------------------------------------------


def test_download_from_url_then_load_returns_the_shipped_network(release, server, tmp_path):
    from monai.bundle import download

    bundle_dir = tmp_path / "bundles"
    download(name=BUNDLE_NAME, version=VERSION, bundle_dir=str(bundle_dir), url=_zip_url(server), progress=False)
    bundle = bundle_dir / BUNDLE_NAME
    for rel in ("configs/metadata.json", "configs/inference.json", "models/model.pt", "models/model.ts",
                "docs/README.md", "LICENSE", "metadata.json", "large_files.yml"):  # fmt: skip
        assert (bundle / rel).is_file(), rel
    assert (bundle / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()

    # monai.bundle.load in a fresh process (it parses the bundle's train.json and sets up logging): from the
    # downloaded bundle; with args_file giving the url, into an empty bundle_dir; and the TorchScript module
    args_file = tmp_path / "download_args.json"
    args_file.write_text(json.dumps({"url": _zip_url(server), "progress": False}))
    script = f"""
import json, torch
from monai.bundle import load
ref = torch.load({str(WEIGHTS)!r}, map_location="cpu", weights_only=True)
equal = lambda a: a.keys() == ref.keys() and all(torch.equal(a[k], ref[k]) for k in ref)
net = load(name={BUNDLE_NAME!r}, bundle_dir={str(bundle_dir)!r}, device="cpu")
fetched = load(name={BUNDLE_NAME!r}, bundle_dir={str(tmp_path / 'fetched')!r}, args_file={str(args_file)!r},
               device="cpu")
ts, meta, _ = load(name={BUNDLE_NAME!r}, bundle_dir={str(bundle_dir)!r}, load_ts_module=True, device="cpu")
x = torch.randn(1, 1, 32, 48, 32)
net.eval()
with torch.no_grad():
    diff = float((ts(x) - net(x)).abs().max())
print("RESULT " + json.dumps({{"net": type(net).__name__, "weights": equal(net.state_dict()),
      "fetched": equal(fetched.state_dict()), "ts_diff": diff, "ts_version": meta["version"]}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=release_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.rpartition("RESULT ")[2])
    assert result == {
        "net": "LightMedSeg",
        "weights": True,
        "fetched": True,
        "ts_diff": result["ts_diff"],
        "ts_version": VERSION,
    }
    assert result["ts_diff"] < 1e-4
    assert (tmp_path / "fetched" / BUNDLE_NAME / "configs" / "metadata.json").is_file()


# --- source="github" ---------------------------------------------------------------------------------------------


def _make_github_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate for github.com signed by it: ``(ca.pem, cert.pem, key.pem)``."""
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography is needed to stand in for github.com")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = {
        "not_valid_before": now - datetime.timedelta(days=1),
        "not_valid_after": now + datetime.timedelta(days=1),
    }
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lightmedseg_bundle test CA")])
    ca = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=ca_name,
            public_key=ca_key.public_key(),
            serial_number=x509.random_serial_number(),
            **validity,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(
            issuer_name=ca_name,
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "github.com")]),
            public_key=key.public_key(),
            serial_number=x509.random_serial_number(),
            **validity,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("github.com")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "github.pem", folder / "github.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def github(release, tmp_path):
    """The local stand-in for github.com and the environment that sends MONAI's requests to it."""
    ca, cert, key = _make_github_certificate(tmp_path)
    proxy = _Server(("127.0.0.1", 0), GitHubProxyHandler)
    proxy.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    proxy.tls.load_cert_chain(cert, key)
    proxy.release_handler = functools.partial(ReleaseHandler, directory=str(release["dist"]))
    proxy.connects, proxy.requests = [], []
    thread = _serve(proxy)
    env = release_env()
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        env.pop(name, None)
        env.pop(name.upper(), None)
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    env.update(https_proxy=proxy_url, HTTPS_PROXY=proxy_url, http_proxy=proxy_url, HTTP_PROXY=proxy_url)
    env["SSL_CERT_FILE"] = str(ca)  # OpenSSL's default trust store for these processes: the test CA only
    env["SSL_CERT_DIR"] = str(tmp_path)
    try:
        yield {"env": env, "proxy": proxy}
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=10)


def test_github_source_downloads_the_release_asset_monai_names(github, tmp_path):
    repo = f"{GITHUB_REPO}/{GITHUB_TAG}"
    # the documented command, verbatim but for the folder
    cmd = [sys.executable, "-m", "monai.bundle", "download", "--name", BUNDLE_NAME, "--version", VERSION,
           "--source", "github", "--repo", repo, "--bundle_dir", str(tmp_path / "cli")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=github["env"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "cli" / BUNDLE_NAME / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()

    # monai.bundle.load downloading from the release, and the verified install from the same release
    script = f"""
import json, torch
from monai.bundle import load
from lightmedseg_bundle.release.install import install_bundle
ref = torch.load({str(WEIGHTS)!r}, map_location="cpu", weights_only=True)
net = load(name={BUNDLE_NAME!r}, version={VERSION!r}, bundle_dir={str(tmp_path / 'load')!r}, source="github",
           repo={repo!r}, progress=False, device="cpu")
sd = net.state_dict()
path = install_bundle({str(tmp_path / 'installed')!r}, version={VERSION!r}, source="github", repo={repo!r})
print("RESULT " + json.dumps({{"weights": sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in ref),
                              "installed": str(path)}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=github["env"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.rpartition("RESULT ")[2])
    assert result == {"weights": True, "installed": str(tmp_path / "installed" / BUNDLE_NAME)}

    release_path = f"/{GITHUB_REPO}/releases/download/{GITHUB_TAG}/{zip_name(VERSION)}"
    assert github["proxy"].requests == [release_path, release_path, release_path + ".sha256", release_path]
    assert set(github["proxy"].connects) == {"github.com:443"}


# --- large files ---------------------------------------------------------------------------------------------------


def _bundle_with_local_large_files(release, server, destination: Path, redirect: dict[str, str] | None = None) -> Path:
    """A copy of the packaged bundle without its weights, its large_files.yml pointing at the local server."""
    bundle = destination / BUNDLE_NAME
    shutil.copytree(release["bundle"], bundle)
    text = (bundle / "large_files.yml").read_text()
    for name in ("model.pt", "model.ts"):
        target = (redirect or {}).get(name, name)
        text = text.replace(f'/releases/download/{GITHUB_TAG}/{name}"', f'/releases/download/{GITHUB_TAG}/{target}"')
    text = text.replace("https://github.com/", f"{server['url']}/")
    (bundle / "large_files.yml").write_text(text)
    for name in ("model.pt", "model.ts"):
        (bundle / "models" / name).unlink()
    return bundle


def test_download_large_files_fetches_and_hash_checks_the_weights(release, server, tmp_path):
    from monai.apps.utils import HashCheckError
    from monai.bundle import download_large_files

    bundle = _bundle_with_local_large_files(release, server, tmp_path / "ok")
    download_large_files(bundle_path=str(bundle))
    assert (bundle / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()
    assert (bundle / "models" / "model.ts").read_bytes() == (release["bundle"] / "models" / "model.ts").read_bytes()
    # run again on a bundle whose weights were damaged: the existing file fails its hash check
    with open(bundle / "models" / "model.pt", "r+b") as f:
        f.seek(1000)
        f.write(b"\0" * 16)
    with pytest.raises(HashCheckError, match="hash check of existing file failed"):
        download_large_files(bundle_path=str(bundle))

    # the url serves another file than the recorded hash: refused, and nothing is written at models/model.pt
    wrong = _bundle_with_local_large_files(release, server, tmp_path / "wrong", redirect={"model.pt": "model.ts"})
    with pytest.raises(HashCheckError, match="hash check of downloaded file failed"):
        download_large_files(bundle_path=str(wrong))
    assert not (wrong / "models" / "model.pt").exists()


# --- corrupt and truncated downloads -------------------------------------------------------------------------------


def test_monai_download_of_a_corrupt_zip_leaves_a_bundle_a_second_call_trusts(server, tmp_path):
    """MONAI 1.6.1 as is: the reason for the guarded installer (see docs/distribution.md)."""
    import zipfile as _zipfile

    from monai.bundle import download

    bundle_dir = tmp_path / "bundles"
    with pytest.raises(_zipfile.BadZipFile, match="Bad CRC-32"):
        download(
            name=BUNDLE_NAME,
            version=VERSION,
            bundle_dir=str(bundle_dir),
            url=_zip_url(server, "corrupt/"),
            progress=False,
        )
    left = bundle_dir / BUNDLE_NAME / "models" / "model.pt"
    assert left.is_file() and left.stat().st_size < WEIGHTS.stat().st_size  # half-extracted, truncated weights
    assert (bundle_dir / f"{BUNDLE_NAME}.zip").is_file()
    download(
        name=BUNDLE_NAME, version=VERSION, bundle_dir=str(bundle_dir), url=_zip_url(server, "corrupt/"), progress=False
    )
    # ... returned without error: the bad zip and the half bundle are trusted from now on


@pytest.mark.parametrize(
    "prefix, message",
    [
        ("corrupt/", "sha256 of the downloaded zip is"),
        ("truncated/", "retrieval incomplete"),
        ("unsized/", "sha256 of the downloaded zip is"),
        ("mismatch/", "sha256 of the downloaded zip is"),
    ],
    ids=["bad-crc", "truncated-with-length", "truncated-without-length", "checksum-mismatch"],
)
def test_install_refuses_a_bad_download_and_leaves_nothing(release, server, tmp_path, prefix, message):
    bundle_dir = tmp_path / "bundles"
    bundle_dir.mkdir()
    url = _zip_url(server, prefix)
    if prefix in ("truncated/", "unsized/"):  # the checksum file itself is served whole
        sha256 = (release["dist"] / f"{zip_name(VERSION)}.sha256").read_text()
    else:
        sha256 = None
    with pytest.raises(BundleInstallError, match=message):
        install_bundle(bundle_dir, version=VERSION, url=url, sha256=sha256)
    assert list(bundle_dir.iterdir()) == [], "a failed install leaves nothing in bundle_dir"
    # the next attempt, from the good asset, is not fooled by anything from the failed one
    path = install_bundle(bundle_dir, version=VERSION, url=_zip_url(server))
    assert (path / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()
    assert sorted(p.name for p in bundle_dir.iterdir()) == [BUNDLE_NAME]


def test_a_checksum_pinned_in_a_separate_record_refuses_a_forged_release(release, server, tmp_path, capsys):
    """The published ``.sha256`` comes from the zip's own host, so a forged release with a matching one installs;
    a ``model_info.json`` kept elsewhere (the zoo's) pins the real zip."""
    genuine = hashlib.sha256(release["zip"].read_bytes()).hexdigest()
    model_info = tmp_path / "model_info.json"
    model_info.write_text(json.dumps({f"{BUNDLE_NAME}_v{VERSION}": {"checksum": genuine, "source": "..."}}))
    forged_dir = tmp_path / "forged"
    install_bundle(forged_dir, version=VERSION, url=_zip_url(server, "forged/"))  # what the .sha256 cannot tell
    bundle_dir = tmp_path / "bundles"
    bundle_dir.mkdir()
    with pytest.raises(BundleInstallError, match="not the published one"):
        install_bundle(bundle_dir, version=VERSION, url=_zip_url(server, "forged/"), model_info=str(model_info))
    assert list(bundle_dir.iterdir()) == []
    capsys.readouterr()
    path = install_bundle(bundle_dir, version=VERSION, url=_zip_url(server), model_info=str(model_info))
    assert (path / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()
    said = capsys.readouterr().err
    assert f"sha256 {genuine[:16]}... matches {model_info}" in said and "NOT verified" not in said


def test_install_command_offline_from_a_zip_and_overwrite(release, tmp_path, capsys):
    bundle_dir = tmp_path / "bundles"
    args = ["--name", BUNDLE_NAME, "--version", VERSION, "--bundle_dir", str(bundle_dir), "--zip", str(release["zip"])]
    assert install_main(args) == 0
    assert (bundle_dir / BUNDLE_NAME / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()
    assert install_main(args) == 1 and "exists" in capsys.readouterr().err  # no silent reinstall
    (bundle_dir / BUNDLE_NAME / "models" / "model.pt").write_bytes(b"damaged")
    assert install_main([*args, "--overwrite"]) == 0
    assert (bundle_dir / BUNDLE_NAME / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()
    assert install_main([*args[:-1], str(release["dist"] / "corrupt" / zip_name(VERSION)), "--overwrite"]) == 1
    assert "sha256 of the downloaded zip" in capsys.readouterr().err
    assert (bundle_dir / BUNDLE_NAME / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()  # untouched
    assert sorted(p.name for p in bundle_dir.iterdir()) == [BUNDLE_NAME]


def test_install_runs_as_a_plain_file_without_the_package(release, tmp_path):
    """``python install.py`` beside its ``hashing.py``, on a Python where ``import lightmedseg_bundle`` fails."""
    script_dir, blocker = tmp_path / "script", tmp_path / "blocker" / BUNDLE_NAME
    script_dir.mkdir()
    blocker.mkdir(parents=True)
    for name in ("install.py", "hashing.py"):
        shutil.copyfile(REPO_ROOT / "lightmedseg_bundle" / "release" / name, script_dir / name)
    (blocker / "__init__.py").write_text("raise ImportError('the package is not installed on this machine')\n")
    bundle_dir = tmp_path / "bundles"
    args = ["--name", BUNDLE_NAME, "--version", VERSION, "--bundle_dir", str(bundle_dir), "--zip", str(release["zip"])]
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    done = subprocess.run(
        [sys.executable, "install.py", *args], cwd=script_dir, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (bundle_dir / BUNDLE_NAME / "models" / "model.pt").read_bytes() == WEIGHTS.read_bytes()


# --- a fresh install runs inference ----------------------------------------------------------------------------


def _dice(pred: np.ndarray, label: np.ndarray, c: int) -> float:
    p, g = pred == c, label == c
    return float(2 * (p & g).sum() / (p.sum() + g.sum())) if (p.sum() + g.sum()) else float("nan")


@needs_hippocampus
def test_fresh_install_from_the_served_zip_segments_the_validation_cases(release, server, tmp_path):
    """Install from the zip over HTTP, run the installed bundle's inference.json from its own folder on the 35
    validation cases, and score the label maps against the ground truth and the documented Dice."""
    from monai.bundle import download

    from lightmedseg_bundle.data import train_val_split

    bundle_dir = tmp_path / "bundles"
    download(name=BUNDLE_NAME, version=VERSION, bundle_dir=str(bundle_dir), url=_zip_url(server), progress=False)
    bundle = bundle_dir / BUNDLE_NAME
    cases = train_val_split(str(HIPPOCAMPUS_DIR / "dataset.json"), 0.2, 0)["validation"]
    listing = tmp_path / "validation_images.json"
    listing.write_text(json.dumps({"test": [c["image"] for c in cases]}))

    env = release_env()
    env.pop("PYTHONPATH", None)  # nothing of the checkout: the bundle's own package comes first (cwd, python -m)
    where = subprocess.run([sys.executable, "-c", "import lightmedseg_bundle; print(lightmedseg_bundle.__file__)"],
                           cwd=bundle, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert Path(where.stdout.strip()).resolve() == (bundle / "lightmedseg_bundle" / "__init__.py").resolve()
    output_dir = tmp_path / "pred"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "inference", "--config_file", "configs/inference.json",
           "--datalist_file", str(listing), "--output_dir", str(output_dir)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"

    scores = []
    for case in cases:
        name = Path(case["image"]).name.split(".")[0]
        pred_image = nib.load(output_dir / name / f"{name}_seg.nii.gz")
        label_image = nib.load(case["label"])
        assert pred_image.shape == label_image.shape
        pred, label = np.asarray(pred_image.dataobj), np.asarray(label_image.dataobj)
        scores.append([_dice(pred, label, 1), _dice(pred, label, 2)])
    scores = np.array(scores)
    mean_dice = float(np.nanmean(scores))  # over cases and classes, as MONAI's MeanDice reduces
    hint = "is roi_size in configs/inference.json the patch size the weights were trained with?"
    assert mean_dice > 0.7, f"mean Dice {mean_dice:.4f} over {len(cases)} validation cases; {hint}"
    documented = json.loads((CONFIGS / "metadata.json").read_text()).get("eval_metrics", {}).get("mean_dice")
    if documented is not None:
        assert mean_dice >= documented - 0.01, f"mean Dice {mean_dice:.4f}, documented {documented}; {hint}"
