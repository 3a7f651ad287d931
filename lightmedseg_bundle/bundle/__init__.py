"""The glue a bundle run needs around its configs and its command line (the counterpart of :mod:`monai.bundle`).

- :mod:`.checkpoint_paths`: the checkpoint a training starts from: ``--resume true`` (the latest epoch checkpoint,
  skipping damaged ones; a new run never replaces a trained model unasked) or ``--pretrained_weights``.

The other helpers that the configs call have their own homes: event handlers in :mod:`lightmedseg_bundle.handlers`,
flip TTA in :mod:`lightmedseg_bundle.inferers`, datalists in :mod:`lightmedseg_bundle.data`, and the workarounds for
MONAI / ignite / fire behaviour (``as_bool``, unknown override ids, the error summary, silenced messages) in
:mod:`lightmedseg_bundle.workarounds`.
"""

from .checkpoint_paths import checkpoints_newest_first, latest_checkpoint, pretrained_path, resume_path

__all__ = ["checkpoints_newest_first", "latest_checkpoint", "pretrained_path", "resume_path"]
