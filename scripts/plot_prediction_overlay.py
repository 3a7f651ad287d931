"""Figure of the shipped model's prediction on one validation case: image, reference and predicted labels.

    python scripts/plot_prediction_overlay.py --output docs/figures/prediction_overlay.png

Runs the bundle's own inference command (``python -m monai.bundle run inference --config_file
configs/inference.json``, default settings, ``models/model.pt``) from the bundle root on one case of the fixed
validation split (``train_val_split(dataset.json, 0.2, 0)``, the cases training never saw), then draws it with
``lightmedseg_bundle.visualize.save_overlay_png`` (axial slices through the foreground; anterior red, posterior
green) and prints the case's Dice per class. The case is the first of the validation split unless ``--case``
names another (e.g. ``hippocampus_044``): not picked for looking good. Any other argument is an override of the
inference command: the model card's figure is cross-validation fold 0's model on a case it never saw (the shipped
model trained on every case), ``--ckpt_path cv/fold0/checkpoint_epoch=180.pt`` (an absolute path).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lightmedseg_bundle.data import train_val_split  # noqa: E402
from lightmedseg_bundle.visualize import save_overlay_png  # noqa: E402

CLASS_NAMES = ("anterior", "posterior")


def dice_per_class(pred: np.ndarray, label: np.ndarray, classes=(1, 2)) -> list[float]:
    """Dice of each foreground class (NaN when the class is absent from both)."""
    out = []
    for c in classes:
        p, g = pred == c, label == c
        denominator = p.sum() + g.sum()
        out.append(float(2 * np.logical_and(p, g).sum() / denominator) if denominator else float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle_root", default=str(REPO_ROOT), help="bundle to run (default: this repository)")
    parser.add_argument("--dataset_dir", default=str(REPO_ROOT.parent / "shared" / "data" / "msd_hippocampus"))
    parser.add_argument("--case", help="case name (default: the first case of the validation split)")
    parser.add_argument("--output", default="docs/figures/prediction_overlay.png", help="PNG to write")
    parser.add_argument("--num_slices", type=int, default=3, help="axial slices to show")
    # any other argument is a bundle override passed on to the inference command, e.g. --roi_size "[48,64,48]"
    args, extra = parser.parse_known_args(argv)

    datalist = Path(args.dataset_dir) / "dataset.json"
    validation = train_val_split(str(datalist), 0.2, 0)["validation"]
    names = [Path(c["image"]).name.split(".")[0] for c in validation]
    if args.case and args.case not in names:
        print(
            f"ERROR: {args.case} is not in the validation split ({len(names)} cases: {', '.join(names)})",
            file=sys.stderr,
        )
        return 1
    case = validation[names.index(args.case) if args.case else 0]
    name = Path(case["image"]).name.split(".")[0]

    with tempfile.TemporaryDirectory(prefix="overlay-") as work:
        listing = Path(work) / "case.json"
        listing.write_text(json.dumps({"test": [case["image"]]}))
        cmd = [
            sys.executable, "-m", "monai.bundle", "run", "inference",
            "--config_file", "configs/inference.json",
            "--datalist_file", str(listing),
            "--output_dir", str(Path(work) / "pred"),
            *extra,
        ]  # fmt: skip
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = subprocess.run(cmd, cwd=args.bundle_root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"ERROR: inference failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        pred_path = Path(work) / "pred" / name / f"{name}_seg.nii.gz"
        pred = np.asarray(nib.load(pred_path).dataobj)
        label = np.asarray(nib.load(case["label"]).dataobj)
        dice = dice_per_class(pred, label)
        output = save_overlay_png(case["image"], case["label"], pred_path, args.output, num_slices=args.num_slices)
    print(
        json.dumps(
            {
                "figure": str(output),
                "case": name,
                **{f"dice_{n}": round(d, 4) for n, d in zip(CLASS_NAMES, dice, strict=True)},
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
