"""Train, evaluate and report the five cross-validation folds of ``configs/msd_hippocampus_folds.json``, with each
long run resumable from its folder alone.

    python scripts/cross_validation.py train --fold 1        # starts, or resumes, cv/fold1
    python scripts/cross_validation.py evaluate --fold 1     # scores the fold's final weights on its held-out cases
    python scripts/cross_validation.py report                # per-fold and mean Dice/HD95, as Markdown
    python scripts/cross_validation.py train --fold all      # the same recipe on all cases: the model that ships
    python scripts/cross_validation.py run                   # all of it: what is left of the folds, then "all"

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
by Dice on the same held-out cases, which would bias the estimate upwards. Both are scored; the report shows both.
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

NUM_FOLDS = 5
WEIGHTS = {"final": None, "best": "model.pt"}
"""What ``evaluate`` scores: the last epoch checkpoint (the estimate) and the best-by-validation ``model.pt``."""


def fold_dir(state_dir: Path, fold: int | str) -> Path:
    return state_dir / f"fold{fold}"


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


def train(state_dir: Path, fold: int | str, extra: list[str]) -> int:
    out = fold_dir(state_dir, fold)
    out.mkdir(parents=True, exist_ok=True)
    resume = latest_checkpoint(str(out)) is not None
    command = bundle_command(
        "configs/train.json", fold, "--ckpt_dir", str(out), "--output_dir", str(out / "tensorboard"),
        "--resume", str(resume).lower(), *extra,
    )  # fmt: skip
    print(f"fold {fold}: {'resuming' if resume else 'starting'} in {out}", flush=True)
    return run_logged(command, out / "train.log")


def evaluate(state_dir: Path, fold: int, extra: list[str]) -> int:
    out = fold_dir(state_dir, fold)
    final = latest_checkpoint(str(out))
    if final is None:
        raise SystemExit(f"fold {fold}: {out} holds no checkpoint_*.pt; train the fold first")
    for name, filename in WEIGHTS.items():
        command = bundle_command(
            "['configs/train.json','configs/evaluate.json']", fold, "--ckpt_path", filename and str(out / filename)
            or final, "--output_dir", str(out / f"eval_{name}"), *extra,
        )  # fmt: skip
        code = run_logged(command, out / "evaluate.log")
        if code:
            return code
    return 0


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


def pending(state_dir: Path, extra: list[str]) -> list[int | str]:
    """What ``run`` has left, in order: the folds without a final evaluation, those already started first (they
    resume), then ``all`` unless its training has reached its last epoch."""
    folds = [fold for fold in range(NUM_FOLDS) if fold_metrics(fold_dir(state_dir, fold) / "eval_final") is None]
    folds.sort(key=lambda fold: trained_epochs(fold_dir(state_dir, fold)) == 0)
    done = trained_epochs(fold_dir(state_dir, ALL_CASES)) >= final_epoch(extra)
    return [*folds, *([] if done else [ALL_CASES])]


def run(state_dir: Path, extra: list[str]) -> int:
    """Train and evaluate every fold not yet evaluated, then train ``all``; resumable at any point."""
    for fold in pending(state_dir, extra):
        code = train(state_dir, fold, extra)
        if code == 0 and fold != ALL_CASES:
            code = evaluate(state_dir, fold, extra)
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


def report(state_dir: Path) -> str:
    lines = [
        "| fold | Dice (final) | HD95 (final) | Dice (best, selected on the fold) | HD95 (best) |",
        "|---|---|---|---|---|",
    ]
    finals = []
    for fold in range(NUM_FOLDS):
        final = fold_metrics(fold_dir(state_dir, fold) / "eval_final")
        best = fold_metrics(fold_dir(state_dir, fold) / "eval_best")
        if final is None:
            lines.append(f"| {fold} | not trained | | | |")
            continue
        finals.append(final)
        best_cells = f"{best['val_mean_dice']:.4f} | {best['val_hd95']:.3f}" if best else " | "
        lines.append(f"| {fold} | {final['val_mean_dice']:.4f} | {final['val_hd95']:.3f} | {best_cells} |")
    if finals:
        dice = [m["val_mean_dice"] for m in finals]
        hd95 = [m["val_hd95"] for m in finals]
        spread = lambda v: f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else ""  # noqa: E731
        lines.append(
            f"| mean of {len(finals)} | {statistics.mean(dice):.4f}{spread(dice)} | "
            f"{statistics.mean(hd95):.3f}{spread(hd95)} | | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["train", "evaluate", "report", "run"])
    parser.add_argument(
        "--fold",
        type=lambda v: v if v == ALL_CASES else int(v),
        choices=[*range(NUM_FOLDS), ALL_CASES],
        help=f"0-{NUM_FOLDS - 1}, or {ALL_CASES!r} (train only: every case, the model to ship; cv/fold{ALL_CASES})",
    )
    parser.add_argument("--state_dir", type=Path, default=REPO_ROOT / "cv", help="folder of the fold folders")
    args, extra = parser.parse_known_args(argv)
    if args.action == "report":
        print(report(args.state_dir))
        return 0
    if args.action == "run":
        return run(args.state_dir, extra)
    if args.fold is None:
        parser.error(f"{args.action} needs --fold (0-{NUM_FOLDS - 1})")
    if args.fold == ALL_CASES and args.action == "evaluate":
        parser.error(f"--fold {ALL_CASES} trains on every case: it has no held-out cases to evaluate")
    return (train if args.action == "train" else evaluate)(args.state_dir, args.fold, extra)


if __name__ == "__main__":
    sys.exit(main())
