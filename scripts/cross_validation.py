"""Train, evaluate and report the five cross-validation folds of ``configs/msd_hippocampus_folds.json``, ship the
model trained on every case, with each long run resumable from its folder alone.

    python scripts/cross_validation.py train --fold 1        # starts, or resumes, cv/fold1
    python scripts/cross_validation.py evaluate --fold 1     # scores the fold's weights on its held-out cases
    python scripts/cross_validation.py report                # per-fold and mean Dice/HD95, as Markdown
    python scripts/cross_validation.py train --fold all      # the same recipe on all cases: the model that ships
    python scripts/cross_validation.py run                   # all of it: what is left of the folds, then "all"
    python scripts/cross_validation.py ship                  # fold all -> models/model.pt, fold means -> metadata
    python scripts/cross_validation.py run --network unet    # a peer on the same folds and recipe, in cv_unet/

Every fold trains with ``configs/train.json`` as it ships (the frozen recipe) plus ``--fold k``; nothing else is
overridden except where the run writes. A fold's folder, ``cv/fold<k>/``, holds everything needed to go on after an
interruption: the epoch checkpoint (network, optimizer, lr schedule, trainer counters; a few MB), the best model by
validation Dice (``model.pt``), the TensorBoard events and ``train.log``. ``train`` resumes through the bundle's
own ``--resume true`` whenever the folder holds a checkpoint, so an interrupted run goes on with the same command on
any machine that has the repository. Commit the folder while the run goes on; delete it once the run's weights are
shipped.

``--fold all`` trains the frozen recipe on every case (``cv/foldall``): the single model that ships, whose accuracy
the five folds estimate; its validation runs on fold 0's cases, trained on as well, so it is monitoring only, and it
has nothing held out to evaluate.

The estimate uses each fold's *final* weights (the last epoch checkpoint), not its ``model.pt``: that one is chosen
by Dice on the same held-out cases, which would bias the estimate upwards. ``evaluate`` scores the final weights
plain and with the left-right flip TTA that ``--tta true`` offers, and ``model.pt``; the report shows all three.

``ship`` writes fold all's final network to ``models/model.pt`` (atomically; it refuses, changing nothing, while a
fold lacks its evaluations or fold all is short of its last epoch) and the five folds' means to ``eval_metrics`` of
both metadata files; bump the version and package the release after it (``scripts/package_release.py``).

``--network <name>`` stacks ``configs/networks/<name>.json`` on every command and keeps the state in
``cv_<name>/``: the comparison at equal budget. It trains the folds only (no fold all, nothing shipped). A peer's
epoch checkpoint can be far larger than LightMedSeg's (UNet: about 58 MB with AdamW's moments), too large to
commit as the run goes: such a run resumes on the machine that holds its folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lightmedseg_bundle.bundle import latest_checkpoint  # noqa: E402
from lightmedseg_bundle.data.datalist import ALL_CASES  # noqa: E402
from lightmedseg_bundle.inference.atomic_output import atomic_path  # noqa: E402

NUM_FOLDS = 5
EVALUATIONS = {"final": (None, ()), "final_tta": (None, ("--tta", "true")), "best": ("model.pt", ())}
"""What ``evaluate`` scores, into ``eval_<name>/``: (weights in the fold folder, ``None`` for the last epoch
checkpoint; overrides). The final weights are the estimate, plain and with flip TTA; ``model.pt`` is the
best-by-validation model, selected on the same cases."""
METADATA_FILES = ("configs/metadata.json", "metadata.json")
"""The bundle's metadata, kept identical: ``ship`` writes the cross-validated figures into both."""
CLASSES = {"mean": ("mean_dice", "mean_hd95"), "anterior": ("dice_anterior", "hd95_anterior"),
           "posterior": ("dice_posterior", "hd95_posterior")}  # fmt: skip
"""Rows of ``per_class_metrics.csv`` and the ``eval_metrics`` keys of their Dice and HD95."""


def fold_dir(state_dir: Path, fold: int | str) -> Path:
    return state_dir / f"fold{fold}"


def config_files(*configs: str, network: str | None = None) -> str:
    """``--config_file`` for ``configs``, with the network overlay ``configs/networks/<network>.json`` last."""
    overlay = [f"configs/networks/{network}.json"] if network else []
    return "[" + ",".join(f"{config!r}" for config in [*configs, *overlay]) + "]"


def bundle_command(config: str, fold: int | str, *overrides: str) -> list[str]:
    return [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", config,
        "--bundle_root", str(REPO_ROOT), "--fold", str(fold), *overrides,
    ]  # fmt: skip


PROGRESS_BAR = re.compile(r"^(\S.*?: )?\[\d+/\d+\]\s+\d+%\|.*?\[[^\]<]*<[^\]]*\]")
"""A tqdm progress-bar update (``Epoch [3/180]: [22/69]  32%|###  , loss=0.2 [00:09<00:21]``): echoed, not kept in the
log; a log record written right after it, on the same line, is kept."""


def run_logged(command: list[str], log_path: Path) -> int:
    """Run ``command`` with its output appended to ``log_path`` (kept across resumptions) and echoed."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
        for line in process.stdout:
            sys.stdout.write(line)
            # a log record can follow a progress-bar redraw on the same line, after its carriage return
            kept = [PROGRESS_BAR.sub("", part, count=1) for part in line.rstrip("\n").split("\r")]
            kept = [part for part in kept if part.strip()]
            if kept:
                log.write("\n".join(kept) + "\n")
            log.flush()
        return process.wait()


def train(state_dir: Path, fold: int | str, extra: list[str], network: str | None = None) -> int:
    out = fold_dir(state_dir, fold)
    out.mkdir(parents=True, exist_ok=True)
    resume = latest_checkpoint(str(out)) is not None
    command = bundle_command(
        config_files("configs/train.json", network=network), fold, "--ckpt_dir", str(out),
        "--output_dir", str(out / "tensorboard"), "--resume", str(resume).lower(), *extra,
    )  # fmt: skip
    print(f"fold {fold}: {'resuming' if resume else 'starting'} in {out}", flush=True)
    return run_logged(command, out / "train.log")


def evaluate(state_dir: Path, fold: int, extra: list[str], network: str | None = None) -> int:
    """Score the fold's weights on its held-out cases: each of ``EVALUATIONS`` not yet in its folder."""
    out = fold_dir(state_dir, fold)
    final = latest_checkpoint(str(out))
    if final is None:
        raise SystemExit(f"fold {fold}: {out} holds no checkpoint_*.pt; train the fold first")
    for name in missing_evaluations(out):
        filename, overrides = EVALUATIONS[name]
        command = bundle_command(
            config_files("configs/train.json", "configs/evaluate.json", network=network), fold,
            "--ckpt_path", str(out / filename) if filename else final, "--output_dir", str(out / f"eval_{name}"),
            *overrides, *extra,
        )  # fmt: skip
        code = run_logged(command, out / "evaluate.log")
        if code:
            return code
    return 0


def missing_evaluations(out: Path) -> list[str]:
    """The ``EVALUATIONS`` whose ``metrics.csv`` the fold folder ``out`` does not hold yet."""
    return [name for name in EVALUATIONS if fold_metrics(out / f"eval_{name}") is None]


def final_epoch(extra: list[str]) -> int:
    """The epoch a training ends at: ``--epochs``/``--max_epochs`` among ``extra``, else ``train.json``'s."""
    for flag in ("--epochs", "--max_epochs"):
        if flag in extra[:-1]:
            return int(extra[extra.index(flag) + 1])
    return int(json.loads((REPO_ROOT / "configs" / "train.json").read_text())["max_epochs"])


def trained_epochs(out: Path) -> int:
    """The epoch of the latest checkpoint in ``out`` (0 if none)."""
    latest = latest_checkpoint(str(out))
    match = latest and re.search(r"checkpoint_epoch=(\d+)\.pt$", latest)
    return int(match.group(1)) if match else 0


def pending(state_dir: Path, extra: list[str], network: str | None = None) -> list[int | str]:
    """What ``run`` has left, in order: the folds with an evaluation missing, those already started first (they
    resume), then ``all`` (not for a peer network) unless its training has reached its last epoch."""
    folds = [fold for fold in range(NUM_FOLDS) if missing_evaluations(fold_dir(state_dir, fold))]
    folds.sort(key=lambda fold: trained_epochs(fold_dir(state_dir, fold)) == 0)
    done = network is not None or trained_epochs(fold_dir(state_dir, ALL_CASES)) >= final_epoch(extra)
    return [*folds, *([] if done else [ALL_CASES])]


def run(state_dir: Path, extra: list[str], network: str | None = None) -> int:
    """Train (up to the last epoch) and evaluate every fold not yet evaluated, then train ``all``; resumable at
    any point."""
    for fold in pending(state_dir, extra, network):
        code = 0
        if trained_epochs(fold_dir(state_dir, fold)) < final_epoch(extra):
            code = train(state_dir, fold, extra, network)
        if code == 0 and fold != ALL_CASES:
            code = evaluate(state_dir, fold, extra, network)
        if code:
            return code
    return 0


def fold_metrics(eval_dir: Path) -> dict[str, float] | None:
    """Mean Dice and HD95 over a fold's cases (``metrics.csv`` of ``evaluate.json``), or ``None`` if absent."""
    path = eval_dir / "metrics.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        metrics = {name: float(value) for name, value in csv.reader(f)}
    return {name: metrics[name] for name in ("val_mean_dice", "val_hd95")}


def class_metrics(eval_dir: Path) -> dict[str, float]:
    """``eval_metrics`` keys (``mean_dice``, ``dice_anterior``, ``hd95_anterior``, ...) of a fold's evaluation,
    from its ``per_class_metrics.csv``."""
    with open(eval_dir / "per_class_metrics.csv", newline="") as f:
        rows = {row["class"]: row for row in csv.DictReader(f)}
    metrics = {}
    for name, (dice_key, hd95_key) in CLASSES.items():
        metrics[dice_key], metrics[hd95_key] = float(rows[name]["dice"]), float(rows[name]["hd95"])
    return metrics


def _mean_sd(values: list[float], digits: int) -> str:
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def report(state_dir: Path) -> str:
    lines = [
        "| fold | Dice (final) | HD95 (final) | Dice (final, flip TTA) | HD95 (flip TTA) "
        "| Dice (best, selected on the fold) | HD95 (best) |",
        "|---|---|---|---|---|---|---|",
    ]
    estimates: dict[str, list[dict[str, float]]] = {"final": [], "final_tta": []}
    for fold in range(NUM_FOLDS):
        cells = []
        for name in ("final", "final_tta", "best"):
            metrics = fold_metrics(fold_dir(state_dir, fold) / f"eval_{name}")
            cells += [f"{metrics['val_mean_dice']:.4f}", f"{metrics['val_hd95']:.3f}"] if metrics else ["", ""]
            if metrics and name in estimates:
                estimates[name].append(metrics)
        lines.append(f"| {fold} | {' | '.join(cells)} |" if cells[0] else f"| {fold} | not evaluated |" + " |" * 5)
    if estimates["final"]:
        cells = [
            _mean_sd([m[key] for m in found], digits) if found else ""
            for found in estimates.values()
            for key, digits in (("val_mean_dice", 4), ("val_hd95", 3))
        ]
        lines.append(f"| mean of {len(estimates['final'])} | {' | '.join(cells)} | | |")
    return "\n".join(lines)


def shipped_metrics(state_dir: Path) -> dict[str, float]:
    """``eval_metrics`` of what ships: each key's mean over the five folds' final weights (``_tta`` keys: with flip
    TTA), and the folds' standard deviation of the mean Dice and HD95 (``mean_dice_fold_sd``, ``mean_hd95_fold_sd``).

    Raises:
        SystemExit: a fold lacks its final evaluation (plain or with TTA).
    """
    missing = [
        f"fold {fold} eval_{name}"
        for fold in range(NUM_FOLDS)
        for name in ("final", "final_tta")
        if not (fold_dir(state_dir, fold) / f"eval_{name}" / "per_class_metrics.csv").is_file()
    ]
    if missing:
        raise SystemExit(
            f"cannot ship: the cross-validation is incomplete ({', '.join(missing)} missing in {state_dir})"
        )
    metrics: dict[str, float] = {}
    for name, suffix in (("final", ""), ("final_tta", "_tta")):
        folds = [class_metrics(fold_dir(state_dir, fold) / f"eval_{name}") for fold in range(NUM_FOLDS)]
        for key in folds[0]:
            metrics[key + suffix] = round(statistics.mean(m[key] for m in folds), 4)
        if not suffix:
            for key in ("mean_dice", "mean_hd95"):
                metrics[f"{key}_fold_sd"] = round(statistics.stdev(m[key] for m in folds), 4)
    return metrics


def ship(state_dir: Path, bundle_root: Path = REPO_ROOT) -> int:
    """Write fold all's final network to ``models/model.pt`` and the cross-validated figures to ``eval_metrics``.

    Everything is checked before anything is written: every fold evaluated, fold all trained to ``train.json``'s
    last epoch, its network loading into ``train.json``'s ``network_def``.
    """
    import torch
    from monai.bundle import ConfigParser

    metrics = shipped_metrics(state_dir)
    out, last = fold_dir(state_dir, ALL_CASES), final_epoch([])
    trained = trained_epochs(out)
    if trained < last:
        raise SystemExit(f"cannot ship: fold {ALL_CASES} ({out}) is at epoch {trained} of {last}")
    checkpoint = latest_checkpoint(str(out))
    weights = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "train.json"))
    parser["bundle_root"] = str(bundle_root)
    parser.get_parsed_content("network_def").load_state_dict(weights)  # strict: the shipped architecture
    texts = {(bundle_root / name).read_text() for name in METADATA_FILES}
    if len(texts) != 1:
        raise SystemExit(f"cannot ship: {' and '.join(METADATA_FILES)} differ; they must be the same file")
    meta = json.loads(texts.pop())
    meta["eval_metrics"] = metrics
    text = json.dumps(meta, indent=4, ensure_ascii=False) + "\n"
    with atomic_path(bundle_root / "models" / "model.pt") as partial:
        torch.save(weights, partial)
    for name in METADATA_FILES:
        with atomic_path(bundle_root / name) as partial:
            partial.write_text(text)
    print(f"models/model.pt <- {checkpoint}; eval_metrics: {json.dumps(metrics)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["train", "evaluate", "report", "run", "ship"])
    parser.add_argument(
        "--fold",
        type=lambda v: v if v == ALL_CASES else int(v),
        choices=[*range(NUM_FOLDS), ALL_CASES],
        help=f"0-{NUM_FOLDS - 1}, or {ALL_CASES!r} (train only: every case, the model to ship; cv/fold{ALL_CASES})",
    )
    parser.add_argument(
        "--network", help="a peer, configs/networks/<network>.json stacked on every command (default: LightMedSeg)"
    )
    parser.add_argument("--state_dir", type=Path, help="folder of the fold folders (default: cv/, cv_<network>/)")
    args, extra = parser.parse_known_args(argv)
    if args.network and not (REPO_ROOT / "configs" / "networks" / f"{args.network}.json").is_file():
        parser.error(f"--network {args.network}: no configs/networks/{args.network}.json")
    state_dir = args.state_dir or REPO_ROOT / (f"cv_{args.network}" if args.network else "cv")
    if args.action == "report":
        print(report(state_dir))
        return 0
    if args.action == "ship":
        if args.network:
            parser.error("ship writes LightMedSeg's models/model.pt: a peer network is compared, not shipped")
        return ship(state_dir)
    if args.action == "run":
        return run(state_dir, extra, args.network)
    if args.fold is None:
        parser.error(f"{args.action} needs --fold (0-{NUM_FOLDS - 1})")
    if args.fold == ALL_CASES and (args.action == "evaluate" or args.network):
        parser.error(f"--fold {ALL_CASES} trains on every case: it has no held-out cases to evaluate, and only "
                     "LightMedSeg's is shipped")  # fmt: skip
    return (train if args.action == "train" else evaluate)(state_dir, args.fold, extra, args.network)


if __name__ == "__main__":
    sys.exit(main())
