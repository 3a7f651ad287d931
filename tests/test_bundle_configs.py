"""Static checks of the bundle: metadata keys, config files, and MONAI's workflow properties."""

from __future__ import annotations

import configparser
import json

import pytest
import torch
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, hippocampus_cases, needs_hippocampus, write_datalist
from monai.bundle import ConfigParser, ConfigWorkflow

import lightmedseg_bundle
from lightmedseg_bundle.networks import size_divisible

META_REQUIRED = [
    "schema",
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "name",
    "task",
    "description",
    "authors",
    "copyright",
    "data_source",
    "data_type",
    "image_classes",
    "label_classes",
    "pred_classes",
    "eval_metrics",
    "intended_use",
    "references",
    "network_data_format",
]
TENSOR_REQUIRED = [
    "type",
    "format",
    "num_channels",
    "spatial_shape",
    "dtype",
    "value_range",
    "is_patch_data",
    "channel_def",
]
ALL_CONFIGS = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.json"))


def test_root_metadata_is_identical_to_configs_metadata():
    assert (REPO_ROOT / "metadata.json").read_bytes() == (CONFIGS / "metadata.json").read_bytes()


def test_metadata_has_the_model_zoo_schema_keys():
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    missing = [k for k in META_REQUIRED if k not in meta]
    assert not missing, f"metadata.json lacks {missing}"
    assert meta["schema"].endswith("meta_schema_20240725.json")
    assert meta["version"] == lightmedseg_bundle.__version__ and meta["version"] in meta["changelog"]
    image = meta["network_data_format"]["inputs"]["image"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    for tensor in (image, pred):
        assert not [k for k in TENSOR_REQUIRED if k not in tensor]
    assert image["type"] == "image" and image["format"] == "magnitude" and image["modality"] == "MR"
    assert image["num_channels"] == 1 and image["dtype"] == "float32" and image["channel_def"] == {"0": "image"}
    assert image["spatial_shape"] == ["16*n", "16*n", "16*n"]
    assert pred["format"] == "segmentation" and pred["num_channels"] == 3
    assert pred["channel_def"] == {"0": "background", "1": "anterior", "2": "posterior"}


def test_required_packages_are_installable_from_pypi():
    """Model-zoo tooling pip-installs ``required_packages_version``; the bundle's own package is not on PyPI but
    inside the bundle (``pip install <bundle folder>``), so it must not be listed there."""
    meta = json.loads((CONFIGS / "metadata.json").read_text())
    assert "lightmedseg_bundle" not in meta["required_packages_version"]


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_is_json_and_expressions_stay_short(name):
    """Every config parses; ``$`` expressions are one short line (longer logic lives in lightmedseg_bundle)."""
    content = ConfigParser.load_config_file(CONFIGS / name)
    assert isinstance(content, dict) and content

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)
        elif isinstance(node, str) and node.startswith("$"):
            yield node

    long = [e for e in walk(content) if "\n" in e or len(e) > 120]
    assert not long, f"expressions too long for a config, move them into lightmedseg_bundle: {long}"


def test_logging_conf_is_readable():
    parser = configparser.ConfigParser()
    assert parser.read(CONFIGS / "logging.conf")
    assert parser["logger_root"]["level"] == "INFO"


def test_run_ids_alias_run():
    """``monai.bundle run training`` (MONAI 1.6) and ``run inference`` execute the same steps as ``run``."""
    assert ConfigParser.load_config_file(CONFIGS / "train.json")["training"] == "%run"
    assert ConfigParser.load_config_file(CONFIGS / "inference.json")["inference"] == "%run"
    assert ConfigParser.load_config_file(CONFIGS / "evaluate.json")["evaluating"] == "%run"


def test_train_and_validate_share_ids_with_overlays():
    """Overlays override top-level ids instead of copying sections."""
    train = ConfigParser.load_config_file(CONFIGS / "train.json")
    for key in ("bundle_root", "ckpt_dir", "output_dir", "dataset_dir", "epochs", "val_interval", "device", "amp"):
        assert key in train
    for section, keys in {
        "train": ("preprocessing", "dataset", "dataloader", "inferer", "postprocessing", "handlers", "trainer"),
        "validate": ("preprocessing", "dataset", "inferer", "postprocessing", "handlers", "key_metric", "evaluator"),
    }.items():
        assert all(k in train[section] for k in keys)
    for overlay in ("evaluate.json", "multi_gpu_train.json", "multi_gpu_evaluate.json"):
        content = ConfigParser.load_config_file(CONFIGS / overlay)
        assert "train" not in content and "validate" not in content, f"{overlay} copies a section, override ids"


def _workflow(config_files, workflow_type, **override) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / f) for f in config_files],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **override,
    )
    workflow.initialize()
    return workflow


@needs_hippocampus
@pytest.mark.parametrize(
    "config_files, workflow_type",
    [
        (["train.json"], "train"),
        (["train.json", "evaluate.json"], "train"),  # evaluate.json overrides train.json's ids, keeps them all
        (["train.json", "tasks/acdc.json"], "train"),
    ],
)
def test_train_and_evaluate_workflows_have_every_property(tmp_path, config_files, workflow_type):
    datalist = write_datalist(tmp_path / "dataset.json", hippocampus_cases(1), validation=hippocampus_cases(1, 1))
    workflow = _workflow(
        config_files, workflow_type, bundle_root=str(tmp_path), datalist_file=str(datalist), num_workers=0
    )
    assert workflow.check_properties() == []


@needs_hippocampus
@pytest.mark.parametrize("config_files", [["inference.json"], ["inference.json", "tasks/brats.json"]])
def test_inference_workflow_has_every_property(tmp_path, config_files):
    workflow = _workflow(
        config_files,
        "infer",
        bundle_root=str(tmp_path),
        input_dir=str(HIPPOCAMPUS_DIR / "imagesTr"),
        input_pattern="hippocampus_001.nii.gz",
        in_channels=1,  # the BraTS overlay expects 4, the one real image here has 1
        load_pretrain=False,
    )
    assert workflow.check_properties() == []


NETWORK_OVERLAYS = sorted(p.name for p in (CONFIGS / "networks").glob("*.json"))


def test_peer_network_overlays_are_present():
    assert {"unet.json", "segresnet.json"} <= set(NETWORK_OVERLAYS)


@pytest.mark.parametrize("overlay", NETWORK_OVERLAYS)
@pytest.mark.parametrize("base", ["train.json", "inference.json"])
def test_network_overlay_swaps_the_network_of_training_and_inference(overlay, base):
    """``configs/networks/<name>.json`` after train.json or inference.json builds that network for their data."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / base), str(CONFIGS / "networks" / overlay)])
    target = ConfigParser.load_config_file(CONFIGS / "networks" / overlay)["network_def"]["_target_"]
    network = parser.get_parsed_content("network_def").eval()
    assert type(network).__name__ == target.rsplit(".", 1)[-1]
    with torch.no_grad():
        out = network(torch.randn(1, parser["in_channels"], 48, 64, 48))
    assert out.shape == (1, parser["out_channels"], 48, 64, 48)


@pytest.mark.parametrize("task", ["brats.json", "acdc.json"])
@pytest.mark.parametrize("base", ["train.json", "inference.json"])
def test_task_overlays_keep_the_trilinear_head(task, base):
    """The hippocampus configs use the full-resolution refinement; the task overlays, on 128^3 and larger inputs,
    keep the cheaper trilinear head (docs/architecture.md, decision 9)."""
    hippocampus = ConfigParser()
    hippocampus.read_config(str(CONFIGS / base))
    assert hippocampus.get_parsed_content("network_def").refinement is not None
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / base), str(CONFIGS / "tasks" / task)])
    network = parser.get_parsed_content("network_def")
    assert network.refinement is None and isinstance(network.head[1], torch.nn.Upsample)
    assert network.in_channels == parser["in_channels"] and network.out_channels == parser["out_channels"]


@pytest.mark.parametrize("overlay, divisor", [(None, 16), ("networks/segresnet.json", 8), ("networks/unet.json", 16)])
@pytest.mark.parametrize(
    "base, padding", [("train.json", "train#deterministic_transforms"), ("inference.json", "preprocessing")]
)
def test_inputs_are_padded_to_the_multiple_the_network_needs(base, padding, overlay, divisor):
    """``DivisiblePadd``'s ``k`` is read from the network the config builds, not written in the config."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f) for f in (base, overlay) if f])
    parser.update({"device": "$torch.device('cpu')"})
    transforms = parser.get_parsed_content(padding)
    transforms = transforms.transforms if hasattr(transforms, "transforms") else transforms
    (pad,) = [t for t in transforms if type(t).__name__ == "DivisiblePadd"]
    assert pad.padder.k == divisor == size_divisible(parser.get_parsed_content("network"))


def test_size_divisible_refuses_a_network_it_cannot_read():
    with pytest.raises(ValueError, match="size_divisible"):
        size_divisible(torch.nn.Conv3d(1, 1, 3))


#: ids that define the model and how it sees its input: training, evaluation and inference must agree on each
MODEL_IDS = (
    "in_channels",
    "out_channels",
    "activation",
    "pixdim",
    "roi_size",
    "sw_batch_size",
    "overlap",
    "sw_mode",
    "network_def",
    "cpu_kernels",
    "network",
    "sw_inferer",
    "pred_activation",
)


def test_training_and_inference_define_the_model_and_its_input_alike():
    """train.json and inference.json each stand alone (``--config_file configs/inference.json``), so the ids they
    share are written twice; this keeps the two copies one value."""
    train = ConfigParser.load_config_file(CONFIGS / "train.json")
    inference = ConfigParser.load_config_file(CONFIGS / "inference.json")
    assert {k: train[k] for k in MODEL_IDS} == {k: inference[k] for k in MODEL_IDS}
    normalise = {k: v for k, v in train["intensity_transform"].items() if k != "keys"}
    assert normalise == {k: v for k, v in inference["intensity_transform"].items() if k != "keys"}


@pytest.mark.parametrize(
    "base, overlay, expected",
    [
        (
            "train.json",
            "multi_gpu_train.json",
            {
                "train#handlers": {
                    "lightmedseg_bundle.handlers.TrainerCheckpointSaver",
                    "StatsHandler",
                    "TensorBoardStatsHandler",
                    "lightmedseg_bundle.handlers.LossProgressBar",
                    "lightmedseg_bundle.handlers.TrainingSummary",
                },
                "validate#handlers": {"TensorBoardStatsHandler"},
            },
        ),
        ("inference.json", "multi_gpu_inference.json", {"handlers": {"lightmedseg_bundle.handlers.RunSummary"}}),
    ],
)
def test_multi_gpu_overlays_turn_off_exactly_the_writers_on_other_ranks(base, overlay, expected):
    """The overlays disable handlers by position (``train#handlers#4#_disabled_``): the positions must still be the
    handlers that write files or logs, which rank 0 alone runs."""
    config = ConfigParser.load_config_file(CONFIGS / base)
    disabled: dict[str, set[str]] = {}
    for key in ConfigParser.load_config_file(CONFIGS / overlay):
        if key.endswith("#_disabled_"):
            section, index = key[: -len("#_disabled_")].rsplit("#", 1)
            handler = ConfigParser(config)[f"{section}#{index}"]
            disabled.setdefault(section, set()).add(handler["_target_"])
    assert disabled == expected
