"""End-to-end: the bundle in a real MONAI Label 0.8.5 server (``monaibundle`` app), driven by its Python client.

Runs in the MONAI Label environment, as its own pytest invocation (``bash monailabel/run_tests.sh``)::

    .venv-label/bin/python -m pytest -q tests/label

Each server is started the way a user starts one, with ``monailabel/start_server.sh`` (``--init-weights``:
a temporary copy of the bundle, with the real ``models/model.pt`` when the repository has one,
else freshly initialised weights), on 127.0.0.1 and a free port, with a few real cases of ``../shared/data``
copied into a temporary studies folder. The server's output goes to a log file whose tail is shown on failure,
and the server's process group (training and scoring run in child processes) is always killed at the end.

In the main environment (no ``monailabel`` installed) the module is skipped, unless ``LIGHTMEDSEG_LABEL_E2E=1``
(set by ``monailabel/run_tests.sh``), which turns a missing MONAI Label into a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

if os.environ.get("LIGHTMEDSEG_LABEL_E2E") == "1":
    import monailabel.client  # noqa: F401  (must be importable in the label environment)
else:
    pytest.importorskip("monailabel.client", reason="MONAI Label environment only (bash monailabel/run_tests.sh)")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from monailabel.client import MONAILabelClient  # noqa: E402
from monailabel.client.client import MONAILabelUtils  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SERVER = REPO_ROOT / "monailabel" / "start_server.sh"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HIPPOCAMPUS_DIR = SHARED_DATA / "msd_hippocampus"
BRATS_DIR = SHARED_DATA / "brats2015_deepmedic_2ch"

MODEL = "lightmedseg_bundle"
BRATS_MODEL = "lightmedseg_bundle_brats"
STARTUP_TIMEOUT = 240  # seconds until /info answers
TRAIN_TIMEOUT = 420

pytestmark = pytest.mark.timeout(900)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``monailabel/start_server.sh`` process in its own process group, logging to ``log``."""

    def __init__(self, workdir: Path, studies: Path, args: list[str]):
        self.workdir = workdir
        self.studies = studies
        self.app_dir = workdir / "app"
        self.log = workdir / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            LABEL_VENV=sys.prefix,  # the environment running this test
            OMP_NUM_THREADS="2",
            MKL_NUM_THREADS="2",
            PYTHONUNBUFFERED="1",
            # scoring only when the test asks for it (by default it also runs at start-up and after training)
            MONAI_LABEL_AUTO_UPDATE_SCORING="false",
            MONAI_LABEL_SESSION_PATH=str(workdir / "sessions"),
        )
        cmd = ["bash", str(START_SERVER), "--skip-setup", "--app-dir", str(self.app_dir), "--studies", str(studies),
               "--host", "127.0.0.1", "--port", str(self.port), *args]  # fmt: skip
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, cwd=workdir)  # fmt: skip
        self.client = MONAILabelClient(self.url, tmpdir=str(workdir / "client"))
        (workdir / "client").mkdir(exist_ok=True)

    def tail(self, n: int = 6000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text if len(text) <= n else "...\n" + text[-n:]

    def explain(self, message: str) -> str:
        return f"{message}\n--- tail of the MONAI Label server log {self.log} ---\n{self.tail()}"

    def wait_until_up(self, timeout: float = STARTUP_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(self.explain(f"the server exited with code {self.proc.returncode} during start-up"))
            try:
                with urllib.request.urlopen(self.url + "/info/", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                time.sleep(1)
        pytest.fail(self.explain(f"/info did not answer within {timeout} s"))

    def call(self, what: str, fn, *args, **kwargs):
        """A client call; on any error, fail with the server log."""
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            pytest.fail(self.explain(f"{what} failed: {type(e).__name__}: {e}"))

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        # children that outlived the server (training / scoring subprocesses) are in the same group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log_file.close()


@contextlib.contextmanager
def running_server(workdir: Path, studies: Path, args: list[str]):
    server = Server(workdir, studies, args)
    try:
        server.info = server.wait_until_up()
        yield server
    finally:
        server.stop()


def decathlon_cases(data_dir: Path, n: int) -> list[dict[str, Path]]:
    listed = json.loads((data_dir / "dataset.json").read_text())["training"][:n]
    return [{k: (data_dir / v).resolve() for k, v in case.items() if k in ("image", "label")} for case in listed]


def case_id(path: Path) -> str:
    return path.name[: -len(".nii.gz")]


def bundle_labels(metadata: Path) -> dict[str, int]:
    """``channel_def`` of the bundle's output, as MONAI Label lists it (lower case, background left out)."""
    channel_def = json.loads(metadata.read_text())["network_data_format"]["outputs"]["pred"]["channel_def"]
    return {v.lower(): int(k) for k, v in channel_def.items() if v.lower() != "background"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_label_map(server: Server, label_file: str, image_file: Path, values: set[int]) -> np.ndarray:
    """The returned label map has the image's spatial shape and geometry and only the given values."""
    label, image = nib.load(label_file), nib.load(str(image_file))
    assert label.shape == image.shape[:3], server.explain(f"label shape {label.shape}, image {image.shape}")
    assert np.allclose(label.affine, image.affine, atol=1e-4), server.explain(
        f"label affine\n{label.affine}\nimage affine\n{image.affine}"
    )
    data = np.asarray(label.dataobj)
    assert np.array_equal(data, np.round(data)), "label map values are not integers"
    found = {int(v) for v in np.unique(data)}
    assert found <= values, f"label values {sorted(found)} outside {sorted(values)}"
    return data


@pytest.fixture(scope="module")
def hippocampus(tmp_path_factory):
    if not (HIPPOCAMPUS_DIR / "dataset.json").is_file():
        pytest.skip(f"real data not found at {HIPPOCAMPUS_DIR}")
    workdir = tmp_path_factory.mktemp("monailabel_hippocampus")
    studies = workdir / "studies"
    studies.mkdir()
    cases = decathlon_cases(HIPPOCAMPUS_DIR, 6)
    for case in cases:
        shutil.copy(case["image"], studies / case["image"].name)
    with running_server(workdir, studies, ["--init-weights", "--epistemic"]) as server:
        server.cases = cases
        server.bundle = server.app_dir / "model" / MODEL
        yield server


def test_info_lists_the_bundle_with_its_labels(hippocampus):
    info = hippocampus.info
    assert MODEL in info["models"], hippocampus.explain(f"models: {list(info['models'])}")
    model = info["models"][MODEL]
    assert model["labels"] == bundle_labels(REPO_ROOT / "configs" / "metadata.json") == {"anterior": 1, "posterior": 2}
    assert model["dimension"] == 3
    assert model["type"] == "segmentation"
    assert MODEL in info["trainers"]
    assert MODEL in info["scoring"]  # --epistemic
    assert "random" in info["strategies"]
    assert info["datastore"]["total"] == len(hippocampus.cases)


def test_infer_returns_a_label_map_in_the_image_geometry(hippocampus):
    image = hippocampus.cases[0]["image"]
    label_file, result = hippocampus.call("infer", hippocampus.client.infer, MODEL, case_id(image), {})
    check_label_map(hippocampus, label_file, image, {0, 1, 2})
    assert result["label_names"] == {"anterior": 1, "posterior": 2}
    # the bundle's own inference.json: its preprocessing and postprocessing ran, SaveImaged was dropped and
    # MONAI Label's Restored added
    pre, post = result["latencies"]["transform"]["pre"], result["latencies"]["transform"]["post"]
    assert {"ValidateSampled", "Orientationd", "NormalizeIntensityd", "DivisiblePadd"} <= set(pre), pre
    assert {"Activationsd", "Invertd", "AsDiscreted", "Restored"} <= set(post), post
    assert "SaveImaged" not in post
    # models/model.pt matched network_def key for key (MONAI Label loads with strict=False and only warns)
    assert "Checkpoint keys don't match" not in hippocampus.log.read_text(errors="replace"), hippocampus.explain("")


def test_saved_labels_fine_tune_the_bundle(hippocampus):
    server, client = hippocampus, hippocampus.client
    labelled = server.cases[:4]
    # the annotator's loop: auto-segment, correct (here: the reference label stands for the correction), save
    for case in labelled:
        image_id = case_id(case["image"])
        server.call("infer", client.infer, MODEL, image_id, {})
        saved = server.call("save_label", client.save_label, image_id, str(case["label"]), tag="final")
        assert saved["image"] == image_id, saved
    datastore = server.call("datastore", client.datastore)
    labelled_ids = {i for i, obj in datastore["objects"].items() if obj.get("labels", {}).get("final")}
    assert labelled_ids == {case_id(c["image"]) for c in labelled}, labelled_ids

    weights = server.bundle / "models" / "model.pt"
    before = sha256(weights)
    shipped = REPO_ROOT / "models" / "model.pt"
    shipped_before = sha256(shipped) if shipped.is_file() else None
    started = server.call("train", client.train_start, MODEL, {"max_epochs": 2, "val_split": 0.25, "multi_gpu": False})
    assert started.get("status") in ("SUBMITTED", "RUNNING", "DONE"), server.explain(f"train start: {started}")

    deadline = time.monotonic() + TRAIN_TIMEOUT
    status = {}
    while time.monotonic() < deadline:
        status = server.call("train status", client.train_status) or {}
        if status.get("status") in ("DONE", "ERROR", "STOPPED"):
            break
        time.sleep(2)
    details = "\n".join(status.get("details", [])[-40:])
    assert status.get("status") == "DONE", server.explain(f"training ended as {status.get('status')}:\n{details}")
    assert status["request"]["max_epochs"] == 2

    # the fine-tuned network becomes the served one: validation (val_split > 0) saved models/model.pt
    assert sha256(weights) != before, server.explain(
        "models/model.pt was not rewritten by the fine-tuning: the validation of train.json did not run within "
        f"max_epochs=2 (see docs/monailabel.md, 'Fine-tuning'); training log:\n{details}"
    )
    assert list((server.bundle / "models").glob("checkpoint_*.pt")), "no training checkpoint written"
    assert (sha256(shipped) if shipped.is_file() else None) == shipped_before, "the repository's weights changed"

    # and the next auto-segmentation uses it (MONAI Label reloads a model file whose time stamp changed)
    image = server.cases[4]["image"]
    label_file, _ = server.call("infer after training", client.infer, MODEL, case_id(image), {})
    check_label_map(server, label_file, image, {0, 1, 2})
    assert "Reload model" in server.log.read_text(errors="replace"), server.explain("model not reloaded")


def test_epistemic_scoring_sets_network_dropout(hippocampus):
    """The app's scoring task (as built by monaibundle's main.py) sets network_def#dropout; the network takes it."""
    import torch
    from monai.transforms import Invertd, SaveImaged

    from monailabel.tasks.infer.bundle import BundleInferTask

    task = BundleInferTask(str(hippocampus.bundle), {}, train_mode=True, skip_writer=True, dropout=0.2,
                           post_filter=[SaveImaged, Invertd])  # fmt: skip
    assert task.is_valid()
    assert task.bundle_config["network_def"]["dropout"] == 0.2
    dropouts = [m for m in task.network.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    assert dropouts and all(m.p == 0.2 for m in dropouts), dropouts


def test_epistemic_scoring_and_next_sample(hippocampus):
    server, client = hippocampus, hippocampus.client
    status, body, _, _ = MONAILabelUtils.http_method(
        "POST", server.url, f"/scoring/{MODEL}?run_sync=true", {"max_samples": 2, "simulation_size": 3}
    )
    assert status == 200, server.explain(f"scoring: HTTP {status} {body!r}")
    summary = json.loads(body)
    assert summary["executed"] >= 1, server.explain(f"scoring summary {summary}")

    datastore = server.call("datastore", client.datastore)
    unlabelled = {i: o for i, o in datastore["objects"].items() if not o.get("labels")}
    scores = {i: o["image"]["info"].get("epistemic_entropy") for i, o in unlabelled.items()}
    scored = {i: s for i, s in scores.items() if s is not None}
    assert scored, server.explain(f"no epistemic_entropy in the datastore: {scores}")
    assert all(math.isfinite(float(s)) for s in scored.values()), scored

    sample = server.call("next sample", client.next_sample, "random", {})
    assert sample["id"] in unlabelled, sample


@pytest.fixture(scope="module")
def brats(tmp_path_factory):
    if not (BRATS_DIR / "dataset.json").is_file():
        pytest.skip(f"real data not found at {BRATS_DIR}")
    workdir = tmp_path_factory.mktemp("monailabel_brats")
    studies = workdir / "studies"
    studies.mkdir()
    case = decathlon_cases(BRATS_DIR, 1)[0]
    shutil.copy(case["image"], studies / case["image"].name)
    args = ["--task", "brats", "--set", "in_channels=2", "--set", "label_scheme=brats2013",
            "--input-channels", "FLAIR,T1c", "--init-weights"]  # fmt: skip
    with running_server(workdir, studies, args) as server:
        server.case = case
        yield server


def test_brats_overlay_on_a_4d_channel_last_image(brats):
    """BraTS in MONAI Label: one 4D NIfTI per case (channels last, as MSD Task01), the BraTS overlay merged in."""
    info = brats.info
    assert BRATS_MODEL in info["models"], brats.explain(f"models: {list(info['models'])}")
    model = info["models"][BRATS_MODEL]
    assert model["labels"] == {"necrosis": 1, "edema": 2, "non-enhancing tumour": 3, "enhancing tumour": 4}
    assert model["dimension"] == 3

    image = brats.case["image"]
    assert nib.load(str(image)).shape[3:] == (2,), "the BraTS test case should be 4D with 2 channels last"
    label_file, result = brats.call("infer", brats.client.infer, BRATS_MODEL, case_id(image), {})
    check_label_map(brats, label_file, image, {0, 1, 2, 4})
    assert "Lambdad" in result["latencies"]["transform"]["post"]  # regions -> one label map
