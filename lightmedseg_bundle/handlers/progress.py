"""Progress on the console: a tqdm bar with the training loss, epoch N/M with an ETA, closing summaries."""

from __future__ import annotations

import logging
import time

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from monai.handlers import from_engine

__all__ = ["LossProgressBar", "RunSummary", "TrainingSummary"]

logger = logging.getLogger(__name__)


class LossProgressBar:
    """Ignite ``ProgressBar`` with the training loss, usable as an item of ``train#handlers``.

    MONAI engines call ``handler.attach(engine)`` with the engine only, so the output transform that
    picks the loss out of the engine output is fixed here.
    """

    def __init__(self, loss_key: str = "loss", persist: bool = False, ncols: int | None = 100) -> None:
        self.loss_key = loss_key
        self.persist = persist
        self.ncols = ncols

    def attach(self, engine: Engine) -> None:
        bar = ProgressBar(persist=self.persist, ncols=self.ncols)
        bar.attach(engine, output_transform=self._loss)

    def _loss(self, output) -> dict[str, float]:
        value = from_engine([self.loss_key], first=True)(output)
        if isinstance(value, tuple):
            value = value[0]
        return {self.loss_key: float(value)}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d} min" if seconds >= 60 else f"{seconds} s")
    )


class TrainingSummary:
    """Epoch N/M with its time and the run's ETA after every epoch, and where everything went at the end.

    Usable as an item of ``train#handlers``: MONAI engines call ``attach(engine)``.

    Args:
        validator: the validation evaluator, whose best key metric the closing summary reports.
        ckpt_dir: where ``model.pt`` and the epoch checkpoints go.
        output_dir: where the TensorBoard events go.
    """

    def __init__(self, validator: Engine | None = None, ckpt_dir: str | None = None, output_dir: str | None = None):
        self.validator = validator
        self.ckpt_dir = ckpt_dir
        self.output_dir = output_dir
        self._start = 0.0
        self._first_epoch = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        self._start = time.monotonic()
        self._first_epoch = engine.state.epoch  # > 0 when resumed

    def _epoch_completed(self, engine: Engine) -> None:
        done = engine.state.epoch - self._first_epoch
        elapsed = time.monotonic() - self._start
        remaining = engine.state.max_epochs - engine.state.epoch
        eta = elapsed / max(done, 1) * remaining
        finish = time.strftime("%H:%M", time.localtime(time.time() + eta))
        logger.info(
            f"epoch {engine.state.epoch}/{engine.state.max_epochs} done, {_duration(elapsed / max(done, 1))} per "
            f"epoch; {remaining} to go, ETA {_duration(eta)} (about {finish})"
        )

    def _completed(self, engine: Engine) -> None:
        lines = [f"training finished: epoch {engine.state.epoch}/{engine.state.max_epochs} in "
                 f"{_duration(time.monotonic() - self._start)}"]  # fmt: skip
        state = getattr(self.validator, "state", None)
        if state is not None and getattr(state, "best_metric_epoch", -1) > 0:
            lines.append(f"best validation metric {state.best_metric:.4f} at epoch {state.best_metric_epoch}")
        if self.ckpt_dir:
            lines.append(f"model.pt (best validation) and checkpoints: {self.ckpt_dir}")
        if self.output_dir:
            lines.append(f"TensorBoard: tensorboard --logdir {self.output_dir}")
        logger.info("; ".join(lines))


class RunSummary:
    """A closing line for an evaluation or inference run: cases, time, metrics and where the outputs are.

    Usable as an item of an evaluator's handlers. ``kind`` names the run (``"evaluation"``, ``"inference"``).
    """

    def __init__(self, kind: str, output_dir: str | None = None) -> None:
        self.kind = kind
        self.output_dir = output_dir
        self._start = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        self._start = time.monotonic()

    def _completed(self, engine: Engine) -> None:
        loader = getattr(engine, "data_loader", None)
        cases = len(loader.dataset) if hasattr(getattr(loader, "dataset", None), "__len__") else engine.state.iteration
        text = f"{self.kind} finished: {cases} case(s) in {_duration(time.monotonic() - self._start)}"
        metrics = {k: v for k, v in engine.state.metrics.items() if isinstance(v, (int, float))}
        if metrics:
            text += "; " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        if self.output_dir:
            text += f"; outputs in {self.output_dir}"
        logger.info(text)
