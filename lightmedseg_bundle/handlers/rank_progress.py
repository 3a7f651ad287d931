"""Per-rank progress lines for multi-GPU (torchrun) training: ``multi_gpu_train.json`` attaches them to its trainer."""

from __future__ import annotations

import logging

import torch.distributed as dist
from ignite.engine import Engine, Events

__all__ = ["log_rank_progress", "rank_and_world"]

logger = logging.getLogger(__name__)


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def log_rank_progress(engine: Engine) -> Engine:
    """Log one line per rank and epoch (``rank 1/2: epoch 3/10 done, 12 iterations``).

    The trainer's own logger only speaks on rank 0 in multi-GPU runs; this line shows that every rank
    trained and how many iterations its ``DistributedSampler`` shard gave it.
    """

    def _log(e: Engine) -> None:
        rank, world = rank_and_world()
        logger.warning(
            f"rank {rank}/{world}: epoch {e.state.epoch}/{e.state.max_epochs} done, "
            f"{e.state.epoch_length} iterations"
        )

    engine.add_event_handler(Events.EPOCH_COMPLETED, _log)
    return engine
