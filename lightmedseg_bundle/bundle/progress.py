"""A tqdm progress bar for the trainer that shows the current loss."""

from __future__ import annotations

from ignite.engine import Engine
from ignite.handlers import ProgressBar
from monai.handlers import from_engine

__all__ = ["LossProgressBar"]


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
