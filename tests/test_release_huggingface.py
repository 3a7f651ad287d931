"""Distribution through the Hugging Face Hub: ``python -m monai.bundle download --source huggingface_hub`` against
a Hub-compatible HTTP server on 127.0.0.1.

Nothing of MONAI or of ``huggingface_hub`` is mocked. MONAI 1.6.1 turns
``download(name, version, bundle_dir, source="huggingface_hub", repo=owner/name)`` into
``huggingface_hub.snapshot_download(repo_id=repo, revision=version, local_dir=bundle_dir/name)``: ``--version`` is
the Hub revision (a tag, a branch or a commit). ``huggingface_hub`` reads its endpoint from ``HF_ENDPOINT`` when it
is imported, so every download runs in a subprocess whose ``HF_ENDPOINT`` is the local server, with a temporary
``HF_HOME``, no token, ``HF_HUB_OFFLINE`` unset and telemetry off.

The server (:class:`HubHandler`) implements what ``snapshot_download`` of ``huggingface_hub`` (pinned in the
``test`` extra) asks for, with the Hub's status codes and headers:

- ``GET /api/models/<owner>/<name>/revision/<revision>``: the repo info at a tag/branch/commit (``sha``,
  ``siblings``); a missing repo answers 401 ``X-Error-Code: RepoNotFound`` (what the Hub answers anonymous clients),
  a missing revision 404 ``X-Error-Code: RevisionNotFound``;
- ``GET /api/models/<owner>/<name>/tree/<revision>[/<path>]``: the recursive listing (files and folders, git blob
  ids, ``lfs`` for the weights);
- ``HEAD|GET /<owner>/<name>/resolve/<revision>/<path>``: a regular file answers with ``ETag`` (its git blob id),
  ``X-Repo-Commit`` and ``Content-Length``; an LFS file (``*.pt``, ``*.ts``, as ``.gitattributes`` says) answers 302
  to a second server on 127.0.0.1 (the Hub's LFS CDN, another origin) with ``X-Linked-Etag`` (its sha256),
  ``X-Linked-Size`` and ``X-Repo-Commit``; a missing file 404 ``X-Error-Code: EntryNotFound``.

The repo it serves has the layout docs/distribution.md ("Publishing") documents, built from the checkout's release files
(:func:`lightmedseg_bundle.release.release_files`, what ``scripts/package_release.py`` zips) plus the ``README.md``
that ``monai.bundle push_to_hf_hub`` writes (``docs/README.md`` with MONAI's Hub front matter), tagged with the
bundle version; its ``main`` branch has moved on to other weights, so a download that ignored ``--version`` would
not get the shipped ``models/model.pt``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from conftest import REPO_ROOT
from test_release_package import VERSION, WEIGHTS, release_env

from lightmedseg_bundle.release import BUNDLE_NAME, release_files

pytestmark = pytest.mark.slow  # end to end: the bundle's commands run for real

pytest.importorskip("huggingface_hub", reason="pip install huggingface_hub (the test extra pins it)")

#: the Hub repository of the bundle, as in docs/README.md
HF_REPO = "lightmedseg/lightmedseg_bundle"
#: what the Hub stores with git-lfs in this repo (the default .gitattributes of a Hub repo covers *.pt)
LFS_SUFFIXES = (".pt", ".ts")
GITATTRIBUTES = b"*.pt filter=lfs diff=lfs merge=lfs -text\n*.ts filter=lfs diff=lfs merge=lfs -text\n"


# --- the repo --------------------------------------------------------------------------------------------------


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(data: bytes) -> bytes:
    return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
        hashlib.sha256(data).hexdigest().encode(),
        len(data),
    )


def _commit_id(files: dict[str, bytes]) -> str:
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(f"{path}\0{_git_blob_id(files[path])}\n".encode())
    return digest.hexdigest()


class HubRepo:
    """A model repo: commits (id -> {path: bytes}) and refs (tag or branch name -> commit id)."""

    def __init__(self, repo_id: str):
        self.repo_id = repo_id
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}

    def commit(self, files: dict[str, bytes], *refs: str) -> str:
        sha = _commit_id(files)
        self.commits[sha] = dict(files)
        for ref in refs:
            self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


def hub_files_from_checkout(staging: Path) -> dict[str, bytes]:
    """The files ``push_to_hf_hub`` uploads for this bundle: the release files of the checkout in
    ``staging/<name>/`` (what ``lightmedseg_bundle.release.install`` extracts there from the release zip), with
    ``README.md`` replaced as MONAI does it (a copy of ``docs/README.md`` with MONAI's model-card front matter)."""
    from monai.bundle.scripts import _add_model_card_metadata  # the very function push_to_hf_hub calls

    bundle = staging / BUNDLE_NAME
    rels = release_files(REPO_ROOT)
    for rel in rels:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / rel, bundle / rel)
    shutil.copyfile(bundle / "docs" / "README.md", bundle / "README.md")
    _add_model_card_metadata(str(bundle / "README.md"))
    files = {rel: (bundle / rel).read_bytes() for rel in sorted({*rels, "README.md"})}
    files[".gitattributes"] = GITATTRIBUTES
    return files


# --- the server ------------------------------------------------------------------------------------------------


class HubHandler(http.server.BaseHTTPRequestHandler):
    """The endpoints of the Hugging Face Hub that ``snapshot_download`` uses (see the module docstring), for the
    repos in ``server.repos``; LFS files are redirected to ``server.lfs_url`` (another :class:`HubHandler` server
    that answers ``/lfs/<sha256>``). Every request is recorded as ``"METHOD path"`` in ``server.requests``."""

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass

    def do_HEAD(self):  # noqa: N802 (http.server's handler names)
        self._handle(body=False)

    def do_GET(self):  # noqa: N802 (http.server's handler names)
        self._handle(body=True)

    # -- responses

    def _send(self, status: int, headers: dict[str, str], data: bytes = b"", body: bool = True) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", headers.get("Content-Length", str(len(data))))
        self.end_headers()
        if body and data:
            self.wfile.write(data)

    def _json(self, payload, body: bool, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._send(200, {"Content-Type": "application/json; charset=utf-8", **(extra or {})}, data, body)

    def _error(self, status: int, code: str, message: str, body: bool, commit: str | None = None) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Code": code, "X-Error-Message": message}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, headers, json.dumps({"error": message}).encode(), body)

    # -- routing

    def _handle(self, body: bool) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
        if len(parts) == 2 and parts[0] == "lfs":
            return self._lfs_object(parts[1], body)
        if len(parts) >= 5 and parts[:2] == ["api", "models"] and parts[4] in ("revision", "tree"):
            repo_id, kind, rest = "/".join(parts[2:4]), parts[4], parts[6:]
            revision = parts[5] if len(parts) > 5 else ""
            repo = self.server.repos.get(repo_id)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found", body)
            sha = repo.resolve(revision)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
            if kind == "revision" and not rest:
                return self._repo_info(repo, sha, body)
            if kind == "tree":
                return self._tree(repo, sha, "/".join(rest), body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, path = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = self.server.repos.get(repo_id)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found", body)
            sha = repo.resolve(revision)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
            return self._resolve(repo, sha, path, body)
        return self._error(404, "NotFound", f"no route for {self.path}", body)

    def _repo_info(self, repo: HubRepo, sha: str, body: bool) -> None:
        files = repo.commits[sha]
        self._json(
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": sha,
                "private": False,
                "gated": False,
                "disabled": False,
                "library_name": "monai",
                "tags": ["monai", "medical"],
                "lastModified": "2025-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": path} for path in sorted(files)],
            },
            body,
        )

    def _tree(self, repo: HubRepo, sha: str, under: str, body: bool) -> None:
        """The recursive listing (``recursive=true``; the only one snapshot_download asks for), files and folders."""
        prefix = f"{under}/" if under else ""
        entries, folders = [], set()
        for path, data in sorted(repo.commits[sha].items()):
            if not path.startswith(prefix):
                continue
            parents = path.split("/")[:-1]
            for i in range(len(parents)):
                folder = "/".join(parents[: i + 1])
                if folder.startswith(prefix) and folder not in folders:
                    folders.add(folder)
                    tree_id = _git_blob_id(folder.encode())
                    entries.append({"type": "directory", "oid": tree_id, "size": 0, "path": folder})
            entry = {"type": "file", "oid": _git_blob_id(data), "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                pointer = _lfs_pointer(data)
                entry["oid"] = _git_blob_id(pointer)
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": len(pointer)}
            entries.append(entry)
        if under and not entries:
            return self._error(404, "EntryNotFound", f"{under} does not exist on {sha}", body, commit=sha)
        self._json(entries, body)

    def _resolve(self, repo: HubRepo, sha: str, path: str, body: bool) -> None:
        data = repo.commits[sha].get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"Entry not found: {path}", body, commit=sha)
        if path.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            self.server.lfs_objects[sha256] = data
            headers = {
                "Location": f"{self.server.lfs_url}/lfs/{sha256}",
                "ETag": json.dumps(_git_blob_id(_lfs_pointer(data))),
                "X-Linked-Etag": json.dumps(sha256),
                "X-Linked-Size": str(len(data)),
                "X-Repo-Commit": sha,
                "Content-Type": "text/plain; charset=utf-8",
            }
            return self._send(302, headers, b"", body)
        headers = {
            "ETag": json.dumps(_git_blob_id(data)),
            "X-Repo-Commit": sha,
            "Content-Type": "application/octet-stream",
        }
        self._send(200, headers, data, body)

    def _lfs_object(self, sha256: str, body: bool) -> None:
        data = self.server.lfs_objects.get(sha256)
        if data is None:
            return self._send(404, {"Content-Type": "text/plain"}, b"no such object", body)
        self._send(200, {"ETag": json.dumps(sha256), "Content-Type": "application/octet-stream"}, data, body)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The Hub (and its LFS CDN, another origin) on free ports of 127.0.0.1, serving ``HF_REPO``: the tag
    ``VERSION`` holds the checkout's bundle, ``main`` a later commit with other weights."""
    files = hub_files_from_checkout(tmp_path_factory.mktemp("staging"))
    repo = HubRepo(HF_REPO)
    tagged = repo.commit(files, VERSION)
    later = repo.commit({**files, "models/model.pt": b"weights of a later, unreleased commit"}, "main")

    lfs_objects: dict[str, bytes] = {}
    servers = []
    for _ in range(2):
        httpd = _Server(("127.0.0.1", 0), HubHandler)
        httpd.requests, httpd.repos, httpd.lfs_objects = [], {HF_REPO: repo}, lfs_objects
        servers.append(httpd)
    hub_httpd, cdn_httpd = servers
    hub_httpd.lfs_url = f"http://127.0.0.1:{cdn_httpd.server_address[1]}"
    cdn_httpd.lfs_url = hub_httpd.lfs_url
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{hub_httpd.server_address[1]}",
            "httpd": hub_httpd,
            "cdn": cdn_httpd,
            "files": files,
            "tagged": tagged,
            "later": later,
        }
    finally:
        for httpd, thread in zip(servers, threads, strict=True):
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=10)


def hub_env(hub, hf_home: Path) -> dict[str, str]:
    """A client environment that knows no Hub but the local one: HF_ENDPOINT, a fresh HF_HOME, no token."""
    env = release_env()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
                 "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE", "HUGGINGFACE_CO_STAGING"):  # fmt: skip
        env.pop(name, None)
    env.update(
        HF_ENDPOINT=hub["url"],
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        no_proxy="127.0.0.1,localhost",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def monai_download(hub, tmp_path: Path, bundle_dir: Path, *, version: str = VERSION, repo: str = HF_REPO):
    """The documented command (docs/distribution.md, "Download and install"), run for real."""
    cmd = [sys.executable, "-m", "monai.bundle", "download", "--name", BUNDLE_NAME, "--version", version,
           "--source", "huggingface_hub", "--repo", repo, "--bundle_dir", str(bundle_dir)]  # fmt: skip
    return subprocess.run(
        cmd, cwd=tmp_path, env=hub_env(hub, tmp_path / "hf_home"), capture_output=True, text=True, timeout=300
    )


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- tests -----------------------------------------------------------------------------------------------------


def test_download_from_the_hub_then_load_gives_the_shipped_weights(hub, tmp_path):
    bundle_dir = tmp_path / "bundles"
    proc = monai_download(hub, tmp_path, bundle_dir)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"

    # the tag was asked for by name, then every file at the commit it points to; nothing of `main`
    requests = list(hub["httpd"].requests)
    tagged = hub["tagged"]
    assert f"GET /api/models/{HF_REPO}/revision/{VERSION}" in requests
    resolved = [r for r in requests if f"/{HF_REPO}/resolve/" in r]
    assert resolved and all(f"/resolve/{tagged}/" in r for r in resolved)
    assert not any(hub["later"] in r or "/main" in r for r in requests)
    assert sorted(r.split(" ")[0] for r in hub["cdn"].requests) == ["GET", "GET"]  # model.pt and model.ts, via LFS

    # the bundle is the repo at the tag, byte for byte: the checkout's files and the Hub model card
    bundle = bundle_dir / BUNDLE_NAME
    assert sorted(p.name for p in bundle_dir.iterdir()) == [BUNDLE_NAME]  # no zip, nothing else
    downloaded = {rel for rel in _files_under(bundle) if not rel.startswith(".cache/")}
    assert downloaded == set(hub["files"])
    for rel in downloaded:
        assert (bundle / rel).read_bytes() == hub["files"][rel], rel
        if rel not in ("README.md", ".gitattributes"):
            assert (bundle / rel).read_bytes() == (REPO_ROOT / rel).read_bytes(), rel
    assert _sha256(bundle / "models" / "model.pt") == _sha256(WEIGHTS)
    assert (bundle / "README.md").read_text().startswith("---\ntags:\n- monai\n- medical\nlibrary_name: monai\n")
    assert (bundle / "README.md").read_text().endswith((REPO_ROOT / "docs" / "README.md").read_text())
    # huggingface_hub keeps its bookkeeping of a local_dir download inside the bundle folder
    assert (bundle / ".cache" / "huggingface").is_dir()

    # monai.bundle.load: from the downloaded bundle (no download: models/model.pt is there), and into an empty
    # bundle_dir (load downloads it from the Hub itself); both give the shipped weights in network_def
    n_before = len(hub["httpd"].requests)
    script = f"""
import json, torch
from monai.bundle import load
ref = torch.load({str(WEIGHTS)!r}, map_location="cpu", weights_only=True)
equal = lambda a: a.keys() == ref.keys() and all(torch.equal(a[k], ref[k]) for k in ref)
kwargs = dict(name={BUNDLE_NAME!r}, version={VERSION!r}, source="huggingface_hub", repo={HF_REPO!r}, device="cpu")
net = load(bundle_dir={str(bundle_dir)!r}, **kwargs)
print("AFTER_FIRST", flush=True)
fetched = load(bundle_dir={str(tmp_path / 'fetched')!r}, **kwargs)
print("RESULT " + json.dumps({{"net": type(net).__name__, "weights": equal(net.state_dict()),
      "fetched": type(fetched).__name__, "fetched_weights": equal(fetched.state_dict())}}))
"""
    env = hub_env(hub, tmp_path / "hf_home_load")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout.rpartition("RESULT ")[2]) == {
        "net": "LightMedSeg",
        "weights": True,
        "fetched": "LightMedSeg",
        "fetched_weights": True,
    }
    assert _sha256(tmp_path / "fetched" / BUNDLE_NAME / "models" / "model.pt") == _sha256(WEIGHTS)
    assert f"GET /api/models/{HF_REPO}/revision/{VERSION}" in hub["httpd"].requests[n_before:]


@pytest.mark.parametrize(
    "repo, version, error",
    [(HF_REPO, "9.9.9", "RevisionNotFoundError"), ("lightmedseg/no_such_bundle", VERSION, "RepositoryNotFoundError")],
    ids=["missing-version", "missing-repo"],
)
def test_missing_repo_or_version_fails_and_leaves_nothing(hub, tmp_path, repo, version, error):
    bundle_dir = tmp_path / "bundles"
    proc = monai_download(hub, tmp_path, bundle_dir, version=version, repo=repo)
    assert proc.returncode != 0
    assert error in proc.stderr, proc.stderr[-4000:]
    # no bundle folder (not even an empty one) that a later download or monai.bundle.load would take as installed
    assert not (bundle_dir / BUNDLE_NAME).exists()
    assert not bundle_dir.exists() or list(bundle_dir.iterdir()) == []
    # nor a ref in the huggingface_hub cache pointing that revision somewhere
    assert not [p for p in (tmp_path / "hf_home").rglob("refs/*") if p.is_file()]
    assert not any("/resolve/" in r for r in hub["httpd"].requests if repo in r and f"/{version}" in r)
    if error == "RevisionNotFoundError":
        # a later download of the existing version, same bundle_dir and HF_HOME, installs the right bundle
        proc = monai_download(hub, tmp_path, bundle_dir)
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert _sha256(bundle_dir / BUNDLE_NAME / "models" / "model.pt") == _sha256(WEIGHTS)
