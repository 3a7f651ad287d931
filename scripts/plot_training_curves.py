"""Figure of the training loss and the validation Dice of a training run, from its TensorBoard event files.

    python scripts/plot_training_curves.py --logdir RUN/eval --output docs/figures/training_curves.png
    python scripts/plot_training_curves.py --logdir STAGE1/eval STAGE2/eval --output docs/figures/training_curves.png

Several ``--logdir`` are consecutive stages of one training (e.g. a fine-tuning with ``--pretrained_weights`` from
the previous stage's ``model.pt``): their epochs and iterations are numbered on after the previous stage's last
ones, and each stage start after the first is marked by a vertical line.

``RUN/eval`` is the ``output_dir`` of ``train.json``: ``TensorBoardStatsHandler`` writes there ``train_loss`` per
iteration, ``train_mean_dice`` per epoch (both stepped by the trainer) and ``val_mean_dice`` per validation epoch
(stepped by the trainer's epoch). The figure has two panels: the training loss per iteration (thin) and its mean
per epoch (bold), and the validation mean Dice per validation epoch with the training Dice per epoch for
reference and the best validation epoch marked (the one ``model.pt`` holds).

Iterations are assigned to epochs by the wall time of the end-of-epoch ``train_mean_dice`` events (which also
works across a resumed run), or with ``--iterations_per_epoch`` when that tag is absent. A summary (epochs,
best validation Dice and its epoch, training time from the first to the last event) is printed as JSON for the
model card.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

LOSS_TAG, TRAIN_DICE_TAG, VAL_DICE_TAG = "train_loss", "train_mean_dice", "val_mean_dice"


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float, float]]]:
    """``{tag: [(step, wall_time, value), ...]}`` over every event file of ``logdir`` (one value per step: the
    latest written, so a resumed run's repeated steps count once), sorted by step.

    Raises:
        FileNotFoundError: when ``logdir`` holds no event file.
    """
    files = sorted(Path(logdir).glob("**/events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"no TensorBoard event files (events.out.tfevents.*) under {logdir}")
    merged: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for path in files:
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            for event in accumulator.Scalars(tag):
                previous = merged[tag].get(event.step)
                if previous is None or event.wall_time >= previous[0]:
                    merged[tag][event.step] = (event.wall_time, event.value)
    return {tag: sorted((s, w, v) for s, (w, v) in steps.items()) for tag, steps in merged.items()}


def concatenate_stages(
    stages: list[dict[str, list[tuple[int, float, float]]]],
) -> tuple[dict[str, list[tuple[int, float, float]]], list[int]]:
    """Number the steps of consecutive stages on: iterations (``train_loss``) after the previous stages' last
    iteration, epochs (the Dice tags) after their last epoch. Returns the merged scalars and the epoch after which
    each stage but the first starts."""
    merged: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    starts, last_iteration, last_epoch = [], 0, 0
    for index, scalars in enumerate(stages):
        if index:
            starts.append(last_epoch)
        for tag, series in scalars.items():
            offset = last_iteration if tag == LOSS_TAG else last_epoch
            merged[tag] += [(step + offset, wall, value) for step, wall, value in series]
        last_iteration += scalars[LOSS_TAG][-1][0] if scalars.get(LOSS_TAG) else 0
        last_epoch += scalars[TRAIN_DICE_TAG][-1][0] if scalars.get(TRAIN_DICE_TAG) else 0
    return dict(merged), starts


def epoch_losses(
    scalars: dict[str, list[tuple[int, float, float]]], iterations_per_epoch: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loss per iteration and per epoch: ``(iteration_epochs, iteration_losses, epochs, epoch_mean_losses)``;
    ``iteration_epochs`` is the fractional epoch of each iteration (for a shared x axis)."""
    loss = scalars.get(LOSS_TAG)
    if not loss:
        raise ValueError(f"no {LOSS_TAG!r} scalars in the event files")
    steps = np.array([s for s, _, _ in loss])
    values = np.array([v for _, _, v in loss])
    if iterations_per_epoch:
        epoch_of = (steps - 1) // iterations_per_epoch + 1
    elif scalars.get(TRAIN_DICE_TAG):
        ends = scalars[TRAIN_DICE_TAG]  # written when each epoch completes, after its iterations
        end_times = [w for _, w, _ in ends]
        end_epochs = [s for s, _, _ in ends]
        index = [min(bisect.bisect_left(end_times, w), len(end_times) - 1) for _, w, _ in loss]
        epoch_of = np.array([end_epochs[i] for i in index])
    else:
        raise ValueError(f"no {TRAIN_DICE_TAG!r} scalars to find epoch ends: give --iterations_per_epoch")
    epochs = np.unique(epoch_of)
    means = np.array([values[epoch_of == e].mean() for e in epochs])
    fractional = np.empty(len(steps), dtype=float)
    for e in epochs:
        where = np.flatnonzero(epoch_of == e)
        fractional[where] = e - 1 + (np.arange(len(where)) + 1) / len(where)
    return fractional, values, epochs, means


def training_time(scalars: dict[str, list[tuple[int, float, float]]]) -> float | None:
    """Seconds from the first to the last event of one stage."""
    walls = [w for series in scalars.values() for _, w, _ in series]
    return round(max(walls) - min(walls), 1) if walls else None


def summary(scalars: dict[str, list[tuple[int, float, float]]], training_time_s: float | None) -> dict:
    """Numbers for the model card: epochs, best and last validation Dice, the given training time."""
    out: dict = {"training_time_s": training_time_s}
    if scalars.get(LOSS_TAG):
        out["iterations"] = scalars[LOSS_TAG][-1][0]
        out["final_train_loss"] = round(scalars[LOSS_TAG][-1][2], 4)
    if scalars.get(TRAIN_DICE_TAG):
        out["epochs"] = scalars[TRAIN_DICE_TAG][-1][0]
    val = scalars.get(VAL_DICE_TAG)
    if val:
        best = max(val, key=lambda item: item[2])
        out.update(
            best_val_mean_dice=round(best[2], 4),
            best_val_epoch=best[0],
            last_val_mean_dice=round(val[-1][2], 4),
            last_val_epoch=val[-1][0],
        )
    return out


def plot(
    scalars: dict[str, list[tuple[int, float, float]]],
    output: str | Path,
    iterations_per_epoch: int | None = None,
    title: str | None = None,
    stage_starts: list[int] | None = None,
) -> Path:
    """Write the two-panel figure to ``output`` (PNG), stage starts marked; returns its path."""
    it_epochs, it_losses, epochs, means = epoch_losses(scalars, iterations_per_epoch)
    figure = Figure(figsize=(11, 4.2))
    loss_axis, dice_axis = figure.subplots(1, 2)

    loss_axis.plot(it_epochs, it_losses, color="#9ecae1", linewidth=0.6, label="per iteration")
    loss_axis.plot(epochs, means, color="#08519c", linewidth=2, marker="o", markersize=2.5, label="epoch mean")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss (Dice + CE + boundary)")
    loss_axis.set_title("training loss")
    loss_axis.grid(alpha=0.3)
    loss_axis.legend(frameon=False)

    if scalars.get(TRAIN_DICE_TAG):
        train = scalars[TRAIN_DICE_TAG]
        dice_axis.plot(
            [s for s, _, _ in train], [v for _, _, v in train], color="#a1d99b", linestyle="--",
            linewidth=1.2, label="training mean Dice (random crops)",
        )  # fmt: skip
    val = scalars.get(VAL_DICE_TAG, [])
    if val:
        dice_axis.plot(
            [s for s, _, _ in val], [v for _, _, v in val], color="#006d2c", linewidth=2, marker="o",
            markersize=4, label="validation mean Dice",
        )  # fmt: skip
        best = max(val, key=lambda item: item[2])
        dice_axis.annotate(
            f"best {best[2]:.3f}\n(epoch {best[0]})", xy=(best[0], best[2]), xytext=(-60, -40),
            textcoords="offset points", arrowprops={"arrowstyle": "->", "color": "0.3"}, fontsize=9,
        )  # fmt: skip
    for axis in (loss_axis, dice_axis):
        for start in stage_starts or []:
            axis.axvline(start + 0.5, color="0.4", linestyle=":", linewidth=1)
    if stage_starts:
        loss_axis.plot([], [], color="0.4", linestyle=":", linewidth=1, label="next training stage")
        loss_axis.legend(frameon=False)
    dice_axis.set_xlabel("epoch")
    dice_axis.set_ylabel("mean Dice (anterior, posterior)")
    dice_axis.set_ylim(0, 1)
    dice_axis.set_title("Dice")
    dice_axis.grid(alpha=0.3)
    dice_axis.legend(frameon=False, loc="lower right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Training loss and validation Dice curves from TensorBoard logs.")
    parser.add_argument(
        "--logdir", required=True, nargs="+", help="output_dir of the training run (event files); several: stages"
    )
    parser.add_argument("--output", default="docs/figures/training_curves.png", help="PNG to write")
    parser.add_argument("--iterations_per_epoch", type=int, help="when the logs have no train_mean_dice")
    parser.add_argument("--title", help="figure title")
    args = parser.parse_args(argv)
    try:
        stages = [read_scalars(logdir) for logdir in args.logdir]
        scalars, starts = concatenate_stages(stages)
        path = plot(scalars, args.output, args.iterations_per_epoch, args.title, starts)
    except (FileNotFoundError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    times = [training_time(stage) for stage in stages]
    total = None if None in times else round(sum(times), 1)
    print(json.dumps({"figure": str(path), **summary(scalars, total), "stage_starts": starts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
