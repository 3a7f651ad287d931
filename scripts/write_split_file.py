"""Write the bundle's fixed train/validation split of MSD Task04 Hippocampus to a Decathlon datalist file, and its
five cross-validation folds.

    python scripts/write_split_file.py --dataset_dir ../shared/data/msd_hippocampus

``train.json`` splits the ``"training"`` list of ``dataset.json`` with ``train_val_split`` (``val_fraction`` and
``split_seed`` of ``train.json``). This script writes that same split, with the ``dataset.json`` paths (relative
to the Task04 folder), as ``"training"`` and ``"validation"`` lists: the record of which cases the shipped weights
were trained and validated on. Copied into a Task04 folder and given as ``--datalist_file``, it is used as is,
whatever the order of that folder's ``dataset.json``. ``tests/test_split_file.py`` checks that the checked-in file
is what this script writes.

The folds file (``configs/msd_hippocampus_folds.json``, ``--folds_output``) lists the validation images of each of
five folds over all labelled cases: fold 0 is the split above (the shipped weights' validation cases), folds 1-4
deal the other cases, shuffled with ``split_seed``, in turn. ``train.json`` reads it with ``--fold k``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from monai.bundle import ConfigParser  # noqa: E402

from lightmedseg_bundle.data import train_val_split  # noqa: E402


def split_datalist(dataset_dir: Path, val_fraction: float, seed: int) -> dict:
    """The split of ``dataset_dir/dataset.json`` as a Decathlon datalist with paths relative to ``dataset_dir``."""
    dataset_dir = dataset_dir.resolve()
    split = train_val_split(str(dataset_dir / "dataset.json"), val_fraction, seed)

    def relative(case: dict) -> dict:
        return {key: "./" + Path(path).relative_to(dataset_dir).as_posix() for key, path in case.items()}

    return {
        "description": (
            "Fixed train/validation split of the 173 labelled MSD Task04 Hippocampus cases used for the bundle's "
            "weights: train_val_split(dataset.json, val_fraction, split_seed) of lightmedseg_bundle.data, "
            "written by scripts/write_split_file.py. Paths are relative to the Task04_Hippocampus folder."
        ),
        "val_fraction": val_fraction,
        "split_seed": seed,
        "numTraining": len(split["training"]),
        "numValidation": len(split["validation"]),
        "training": [relative(case) for case in split["training"]],
        "validation": [relative(case) for case in split["validation"]],
    }


def fold_lists(split: dict, seed: int, num_folds: int = 5) -> dict:
    """``num_folds`` validation lists: fold 0 is ``split``'s validation, the training cases are dealt to the rest."""
    rest = sorted(case["image"] for case in split["training"])
    random.Random(seed).shuffle(rest)
    folds = [sorted(case["image"] for case in split["validation"])]
    folds += [sorted(rest[i :: num_folds - 1]) for i in range(num_folds - 1)]
    return {
        "description": (
            f"{num_folds} cross-validation folds over the {len(rest) + len(folds[0])} labelled MSD Task04 Hippocampus "
            "cases: each fold's validation images, relative to the Task04_Hippocampus folder; every other case "
            "trains. Fold 0 is the split of configs/msd_hippocampus_split.json (the shipped weights' validation "
            "cases). Written by scripts/write_split_file.py; train.json selects a fold with --fold."
        ),
        "num_folds": num_folds,
        "seed": seed,
        "folds": [{"validation": fold} for fold in folds],
    }


def _write_json(data: dict, output: Path) -> None:
    with tempfile.NamedTemporaryFile("w", dir=output.parent, suffix=".tmp", delete=False) as f:
        json.dump(data, f, indent=4)
        f.write("\n")
    os.replace(f.name, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_dir", required=True, help="Task04_Hippocampus folder holding dataset.json")
    parser.add_argument("--output", default=str(REPO_ROOT / "configs" / "msd_hippocampus_split.json"))
    parser.add_argument("--folds_output", default=str(REPO_ROOT / "configs" / "msd_hippocampus_folds.json"))
    args = parser.parse_args()

    train_config = ConfigParser.load_config_file(REPO_ROOT / "configs" / "train.json")
    datalist = split_datalist(Path(args.dataset_dir), train_config["val_fraction"], train_config["split_seed"])
    _write_json(datalist, Path(args.output))
    print(f"{args.output}: {datalist['numTraining']} training / {datalist['numValidation']} validation cases")
    folds = fold_lists(datalist, train_config["split_seed"])
    _write_json(folds, Path(args.folds_output))
    sizes = "/".join(str(len(fold["validation"])) for fold in folds["folds"])
    print(f"{args.folds_output}: {folds['num_folds']} folds of {sizes} validation cases")


if __name__ == "__main__":
    main()
