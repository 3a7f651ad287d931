"""Lay out a MONAI Label ``monaibundle`` app that serves the LightMedSeg bundle.

Run with the MONAI Label environment (``.venv-label/bin/python``, see ``monailabel/setup.sh``)::

    python monailabel/prepare_app.py --app-dir APP [--init-weights] [--weights FILE]
                                     [--task brats --set in_channels=2 --set label_scheme=brats2013]

What it does:

1. copies MONAI Label's ``monaibundle`` sample app (it ships inside the ``monailabel`` wheel) to ``APP``,
   unless ``APP/main.py`` already exists;
2. puts a copy of the bundle at ``APP/model/<name>`` (``--name``, default ``lightmedseg_bundle``): ``configs/``,
   ``metadata.json``, ``LICENSE``, ``docs/`` and ``models/model.pt``. MONAI Label serves the copy's
   ``models/model.pt`` and its ``/train`` replaces that file, so the copy's ``train.json`` writes to ``models/``
   with ``overwrite`` true (a bundle's own training writes to ``runs/`` and never replaces ``models/model.pt``);
   the repository's weights are never touched. An existing copy is kept (``--force`` recreates it);

3. ``--task NAME`` (or a path to a JSON overlay) merges ``configs/tasks/NAME.json`` into the copy's
   ``configs/inference.json`` and ``configs/train.json`` (MONAI Label reads only those two files, one config each,
   so an overlay has to be merged in), then applies every ``--set ID=VALUE`` (VALUE is JSON, else a string).
   For the BraTS overlay, whose network predicts three overlapping sigmoid regions (TC, WT, ET), the copy's
   inference also turns the regions back into one label map in the ``label_scheme`` numbering (a MONAI Label
   client edits one label map per image) and ``metadata.json`` gets the matching ``channel_def``;
4. ``--init-weights`` writes a freshly initialised ``models/model.pt`` (``network_def`` of the copy's
   ``inference.json``) when the copy has none: MONAI Label ignores a bundle without weights. Use it to start
   labelling from scratch; the first ``/train`` fine-tunes these weights.

It prints the app folder and the model name. ``monailabel/start_server.sh`` calls it before starting the server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APP_DIR = REPO_ROOT / ".venv-label" / "app" / "monaibundle"
DEFAULT_NAME = "lightmedseg_bundle"

#: label map values written for the regions (tumour core only, whole tumour only, enhancing) and every label name
#: of each BraTS numbering scheme; keys are the ``label_scheme`` values of ``configs/tasks/brats.json``.
BRATS_LABEL_MAPS: dict[str, dict] = {
    "msd": {
        "core": 2,
        "edema": 1,
        "enhancing": 3,
        "names": {"1": "edema", "2": "non-enhancing tumour", "3": "enhancing tumour"},
    },
    "brats2013": {
        # tumour core without enhancing tumour is necrosis (1) or non-enhancing tumour (3): written as 1
        "core": 1,
        "edema": 2,
        "enhancing": 4,
        "names": {"1": "necrosis", "2": "edema", "3": "non-enhancing tumour", "4": "enhancing tumour"},
    },
    "brats2021": {
        "core": 1,
        "edema": 2,
        "enhancing": 4,
        "names": {"1": "necrotic tumour core", "2": "edema", "4": "enhancing tumour"},
    },
}

BUNDLE_FILES = ("configs", "metadata.json", "LICENSE", "docs")

#: train.json ids of the copy: MONAI Label serves ``models/model.pt`` and its ``/train`` must replace it
LABEL_TRAIN_OVERRIDES = [("ckpt_dir", "$@bundle_root + '/models'"), ("output_dir", "$@bundle_root + '/eval'"),
                         ("overwrite", True)]  # fmt: skip
#: inference.json ids of the copy: MONAI Label instantiates the postprocessing without the bundle's input list, so
#: the outputs' ``input_root`` (the inputs' common folder) must not be computed from it
LABEL_INFER_OVERRIDES = [("input_root", "")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-dir", type=Path, default=DEFAULT_APP_DIR, help=f"app folder (default {DEFAULT_APP_DIR})")
    parser.add_argument("--bundle-dir", type=Path, default=REPO_ROOT, help="the bundle to serve (default: this repo)")
    parser.add_argument("--name", default=None, help="model name in MONAI Label (default lightmedseg_bundle[_TASK])")
    parser.add_argument("--weights", type=Path, help="use this state_dict as the copy's models/model.pt")
    parser.add_argument("--init-weights", action="store_true", help="write fresh weights when there are none")
    parser.add_argument("--task", help="task overlay: a name in configs/tasks/ (brats, acdc) or a JSON file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="ID=VALUE",
        help="config override for inference.json and train.json, VALUE as JSON (repeatable)",
    )
    parser.add_argument("--input-channels", help="comma-separated input channel names for metadata.json")
    parser.add_argument("--force", action="store_true", help="recreate an existing copied bundle")
    return parser.parse_args(argv)


def ensure_app(app_dir: Path) -> None:
    """Copy MONAI Label's monaibundle sample app out of the installed wheel (no network) unless present."""
    if (app_dir / "main.py").is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "monailabel.main", "apps", "--download", "--name", "monaibundle", "--output", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        app_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(tmp) / "monaibundle", app_dir, dirs_exist_ok=True)


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise SystemExit(f"--set expects ID=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def overlay_path(bundle_dir: Path, task: str) -> Path:
    path = Path(task)
    if not path.suffix:
        path = bundle_dir / "configs" / "tasks" / f"{task}.json"
    if not path.is_file():
        raise SystemExit(f"task overlay not found: {path}")
    return path


def merged_config(bundle_dir: Path, name: str, overlay: Path | None, overrides: list[tuple[str, object]]):
    """``configs/<name>`` with the overlay's top-level ids on top (as ``--config_file "[a,b]"`` does), then overrides."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    files = [str(bundle_dir / "configs" / name)] + ([str(overlay)] if overlay else [])
    parser.read_config(files if len(files) > 1 else files[0])
    for key, value in overrides:
        parser[key] = value
    return parser


def add_brats_label_map(parser, scheme: str) -> dict:
    """Append "regions -> one label map" to the inference postprocessing; returns the label numbering used."""
    if scheme not in BRATS_LABEL_MAPS:
        raise SystemExit(f"label_scheme {scheme!r} has no label map; known: {sorted(BRATS_LABEL_MAPS)}")
    m = BRATS_LABEL_MAPS[scheme]
    # channels after discretize: 0 tumour core, 1 whole tumour, 2 enhancing tumour; enhancing wins, then core
    parser["regions_to_label_map"] = {
        "_target_": "Lambdad",
        "keys": "pred",
        "func": (
            f"$lambda x: torch.where(x[2:3] > 0.5, {float(m['enhancing'])}, torch.where(x[0:1] > 0.5, "
            f"{float(m['core'])}, torch.where(x[1:2] > 0.5, {float(m['edema'])}, 0.0)))"
        ),
    }
    transforms = parser["postprocessing"]["transforms"]
    if "@discretize" not in transforms:
        raise SystemExit("inference.json postprocessing has no '@discretize' step to put the label map after")
    transforms.insert(transforms.index("@discretize") + 1, "@regions_to_label_map")
    return m


def write_metadata(
    bundle_dir: Path, dest: Path, parser, label_map: dict | None, input_names: list[str] | None, task: str | None
) -> None:
    metadata = json.loads((bundle_dir / "configs" / "metadata.json").read_text())
    fmt = metadata["network_data_format"]
    image = fmt["inputs"]["image"]
    in_channels = int(parser.get_parsed_content("in_channels"))
    image["num_channels"] = in_channels
    if input_names:
        if len(input_names) != in_channels:
            raise SystemExit(f"--input-channels names {len(input_names)} channels, in_channels is {in_channels}")
        image["channel_def"] = {str(i): n for i, n in enumerate(input_names)}
    elif len(image.get("channel_def", {})) != in_channels:
        image["channel_def"] = {str(i): f"channel {i}" for i in range(in_channels)}
    pred = fmt["outputs"]["pred"]
    if label_map is not None:
        pred.update(format="segmentation", num_channels=1, value_range=[0, max(int(k) for k in label_map["names"])])
        pred["channel_def"] = {"0": "background", **label_map["names"]}
    elif task:
        class_names = parser.get_parsed_content("class_names")
        pred["num_channels"] = int(parser.get_parsed_content("out_channels"))
        pred["channel_def"] = {"0": "background", **{str(i + 1): n for i, n in enumerate(class_names)}}
    if task:
        metadata["description"] = f"{metadata.get('description', '')} MONAI Label copy with the {task!r} overlay."
    text = json.dumps(metadata, indent=4) + "\n"
    (dest / "configs" / "metadata.json").write_text(text)
    (dest / "metadata.json").write_text(text)


def init_weights(dest: Path) -> Path:
    """A freshly initialised ``network_def`` (of the copy's inference.json) saved as ``models/model.pt``."""
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(dest / "configs" / "inference.json"))
    parser["bundle_root"] = str(dest)
    network = parser.get_parsed_content("network_def", instantiate=True)
    path = dest / "models" / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


def copy_bundle(args: argparse.Namespace, dest: Path) -> None:
    bundle_dir = args.bundle_dir.resolve()
    dest.mkdir(parents=True)
    for item in BUNDLE_FILES:
        src = bundle_dir / item
        if src.is_dir():
            shutil.copytree(src, dest / item)
        elif src.is_file():
            shutil.copy2(src, dest / item)
    (dest / "models").mkdir()
    # the shipped models/model.pt holds the default (hippocampus) task's weights: a --task overlay changes the
    # network's channels, so it only gets weights given explicitly with --weights (or --init-weights)
    weights = args.weights or (None if args.task else bundle_dir / "models" / "model.pt")
    if weights is not None and weights.is_file():
        shutil.copy2(weights, dest / "models" / "model.pt")
    elif args.weights:
        raise SystemExit(f"--weights file not found: {args.weights}")

    overlay = overlay_path(bundle_dir, args.task) if args.task else None
    overrides = [parse_override(o) for o in args.overrides]
    train = merged_config(bundle_dir, "train.json", overlay, overrides + LABEL_TRAIN_OVERRIDES)
    train.export_config_file(train.get(), str(dest / "configs" / "train.json"), indent=4)
    infer = merged_config(bundle_dir, "inference.json", overlay, overrides + LABEL_INFER_OVERRIDES)
    label_map = None
    label_transform = infer.get("label_transform") or {}
    if str(label_transform.get("_target_", "")).endswith("ConvertBratsLabelsToRegionsd"):
        label_map = add_brats_label_map(infer, str(infer.get_parsed_content("label_scheme")))
    infer.export_config_file(infer.get(), str(dest / "configs" / "inference.json"), indent=4)
    if overlay or overrides:
        names = args.input_channels.split(",") if args.input_channels else None
        write_metadata(bundle_dir, dest, infer, label_map, names, args.task)
    elif args.input_channels:
        raise SystemExit("--input-channels only applies with --task or --set")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = args.name or (DEFAULT_NAME if not args.task else f"{DEFAULT_NAME}_{Path(args.task).stem}")
    app_dir = args.app_dir.resolve()
    ensure_app(app_dir)
    dest = app_dir / "model" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink():  # a link to the repository, as earlier versions made: fine-tuning rewrote its weights
        dest.unlink()
    if dest.exists() and args.force:
        shutil.rmtree(dest)
    if dest.exists():
        print(f"keeping the existing bundle copy {dest} (--force recreates it)", file=sys.stderr)
    else:
        copy_bundle(args, dest)

    weights = dest / "models" / "model.pt"
    if not weights.is_file():
        if args.init_weights:
            init_weights(dest)
            print(f"wrote freshly initialised weights to {weights}", file=sys.stderr)
        else:
            print(
                f"error: {weights} does not exist and MONAI Label skips a bundle without weights. Give trained "
                "weights with --weights FILE (a training writes runs/<name>/models/model.pt), or start from an "
                "untrained network with --init-weights.",
                file=sys.stderr,
            )
            return 2
    print(f"app={app_dir}")
    print(f"model={name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
