"""Workarounds for behaviour of the bundle's upstream libraries (MONAI 1.6.1, pytorch-ignite 0.5.2, fire 0.7.1,
torch 2.13).

Each one names the upstream behaviour it works around, and ``tests/test_workarounds.py`` exercises that behaviour
directly: when a test there fails, upstream has changed and the workaround (or its part) can go.

- :func:`as_bool`: ``python -m monai.bundle run`` parses its arguments with ``fire``, which leaves ``--resume true``
  the *string* ``"true"`` (and ``"false"`` is truthy in Python).
- :func:`silence_known_harmless_messages` (:data:`KNOWN_HARMLESS_LOGGERS`, :data:`KNOWN_HARMLESS_WARNINGS`): messages
  of MONAI 1.6.1 that a bundle user can do nothing about.
- :func:`warn_unknown_overrides` (:func:`unknown_overrides`, :func:`command_line_config`, :func:`run_ids`): MONAI's
  bundle CLI puts every ``--id value`` into the config, whether an id of that name exists or not, so a typo is
  silently ignored.
- :func:`install_error_summary` (:func:`root_cause`, :func:`root_cause_line`, :func:`missing_run_id_line`): MONAI's
  ``monai.utils.module.instantiate`` wraps an error raised while a config item is built in
  ``RuntimeError("Failed to instantiate ...")``, so the message that matters sits in the middle of the traceback;
  and ``monai.bundle.ConfigWorkflow.run``'s ``run ID 'x' doesn't exist`` does not say which run ids there are.
- :func:`replace_save_handlers`, :func:`key_metric_checkpoint`, :func:`saved_checkpoints`,
  :func:`restore_saved_checkpoints`: the private parts of MONAI's ``CheckpointSaver`` and ignite's ``Checkpoint``
  that :class:`lightmedseg_bundle.handlers.AtomicCheckpointSaver` needs (MONAI's saver writes in place and has no
  public way to replace its save handlers or to read back the best-model record).
- :class:`KeepOneSliceAxes`: MONAI 1.6.1's ``ImageWriter`` squeezes every trailing size-1 axis, so a one-slice
  volume's label map lost its third axis; :func:`lightmedseg_bundle.inference.atomic_image_writer` mixes it in.
- :func:`split_non_meta_entries`: MONAI 1.6.1's ``Spacingd`` fails on a string entry named ``<key>_...`` (MONAI
  Label's ``image_path``); :class:`lightmedseg_bundle.transforms.TrainingSpacingd` calls it.
- :func:`argmax`: torch 2.13's ``torch.argmax`` over the few-class axis of a CPU tensor is 10-15x slower than
  ``torch.max`` over it, which gives the same indices; :class:`lightmedseg_bundle.transforms.AsDiscreted` (the
  configs' ``discretize``) and the uncertainty maps call it.

One more stays where it must run on its own: ``lightmedseg_bundle/release/install.py``, the staged installer, works
around ``monai.bundle.download`` not checking the hash of the zip it downloads and trusting a half-extracted bundle
on the next call (docs/distribution.md; ``tests/test_release_download.py`` shows MONAI 1.6.1's behaviour).
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch
from monai.bundle import ConfigParser

if TYPE_CHECKING:  # annotations only: importing this module loads neither MONAI's handlers nor ignite
    from ignite.handlers import Checkpoint
    from monai.handlers import CheckpointSaver

__all__ = [
    "RUN_ARGUMENTS",
    "KNOWN_HARMLESS_LOGGERS",
    "KNOWN_HARMLESS_WARNINGS",
    "KeepOneSliceAxes",
    "WORKER_TRACEBACK",
    "argmax",
    "as_bool",
    "command_line_config",
    "install_error_summary",
    "key_metric_checkpoint",
    "missing_run_id_line",
    "replace_save_handlers",
    "restore_saved_checkpoints",
    "root_cause",
    "root_cause_line",
    "run_ids",
    "saved_checkpoints",
    "silence_known_harmless_messages",
    "split_non_meta_entries",
    "unknown_overrides",
    "warn_unknown_overrides",
]

logger = logging.getLogger(__name__)

# --- fire 0.7.1: boolean config ids given on the command line ------------------------------------------------------
# ``python -m monai.bundle run`` (MONAI 1.6.1's monai/bundle/__main__.py: ``fire.Fire()``) reads each value with
# fire.parser.DefaultParseValue, a Python literal or else the string as given: ``--resume True`` is the boolean
# ``True``, but ``--resume true`` the *string* ``"true"``. The configs pass every boolean switch (``resume``,
# ``tta``, ``amp``, ``save_predictions``, ``load_pretrain``) through :func:`as_bool` so both spellings work.

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", "none", "null", ""}


def as_bool(value: Any) -> bool:
    """Read ``value`` as a boolean switch: bools, 0/1, and the strings true/false, yes/no, on/off, 1/0.

    Raises:
        ValueError: for any other value (a typo should not silently mean "on").
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected a boolean switch (true/false), got {value!r}")


# --- MONAI 1.6.1: messages a bundle user can do nothing about ------------------------------------------------------
# Silenced for the bundle's own runs; each entry names the upstream behaviour it silences. Everything else (warnings
# about the user's data or overrides) stays.

KNOWN_HARMLESS_LOGGERS = {
    # monai.data.nvimgcodec_pydicom_plugin.register_as_decoder_plugin logs a warning every time a LoadImage(d)
    # builds its readers on a machine without nvImageCodec (the GPU DICOM decoder): pydicom decodes instead
    "monai.data.nvimgcodec_pydicom_plugin": logging.ERROR
}

KNOWN_HARMLESS_WARNINGS = (
    # monai.data.image_reader.NvImgCodecPydicomReader.__init__ repeats the same fact as a UserWarning
    r"NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register",
    # monai.transforms.Orientationd warns on every construction that its `labels` default changes in a later
    # version; the bundle's axcodes (RAS) mean the same with either default
    r".*Orientationd.__init__:labels: Current default value of argument",
)


def silence_known_harmless_messages() -> None:
    """Raise the levels of :data:`KNOWN_HARMLESS_LOGGERS` and ignore :data:`KNOWN_HARMLESS_WARNINGS` (first in
    each config's ``initialize``, before MONAI builds the transforms that emit them)."""
    for name, level in KNOWN_HARMLESS_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for message in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


# --- MONAI 1.6.1's bundle CLI: override ids that no config defines ---------------------------------------------------
# monai.bundle.scripts.run puts every ``--id value`` into the config, whether an id of that name exists or not, and
# only echoes it in its input summary: a typo, or an id of another bundle, is silently ignored (``--max_epoch 2``
# then trains the full schedule). :func:`warn_unknown_overrides`, called first in each config's ``initialize``, logs
# a warning naming each such id and the closest ids the configs do define.

RUN_ARGUMENTS = frozenset(
    ("run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file",
     "workflow_type", "workflow_name", "properties_path")
)  # fmt: skip
"""Arguments of ``monai.bundle.scripts.run`` itself: not config overrides."""


def _cli_arguments(argv: Sequence[str]) -> dict[str, str]:
    """``{name: value}`` of the ``--name value`` / ``--name=value`` arguments after ``run``."""
    args: dict[str, str] = {}
    tokens = list(argv)
    for i, token in enumerate(tokens):
        if not token.startswith("--"):
            continue
        name, sep, value = token[2:].partition("=")
        if not sep:
            value = tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--") else ""
        args[name] = value
    return args


def _config_files(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        return [str(f) for f in ast.literal_eval(value)]
    return [f.strip() for f in value.split(",")] if "," in value else [value]


def command_line_config(argv: Sequence[str]) -> ConfigParser | None:
    """The config files named by ``argv`` (a ``monai.bundle run`` command line, ``--config_file`` or
    ``--args_file``), merged as MONAI merges them, without overrides; ``None`` when it names none."""
    args = _cli_arguments(argv)
    config_file = args.get("config_file")
    if config_file is None and args.get("args_file") and os.path.isfile(args["args_file"]):
        with open(args["args_file"]) as f:
            config_file = json.load(f).get("config_file")
            config_file = json.dumps(config_file) if isinstance(config_file, list) else config_file
    if not config_file:
        return None
    parser = ConfigParser()
    parser.read_config(_config_files(config_file))
    return parser


def run_ids(parser: ConfigParser) -> list[str]:
    """The ids a ``monai.bundle run <id>`` can run: ``run`` and its aliases (``"training": "%run"``)."""
    return [key for key, value in parser.get().items() if key == "run" or value == "%run"]


def unknown_overrides(argv: Sequence[str]) -> dict[str, list[str]]:
    """Override ids in ``argv`` (a ``monai.bundle run`` command line) that the run's config files do not define,
    each with up to three close ids that they do define. Empty when ``argv`` names no config file."""
    args = _cli_arguments(argv)
    parser = command_line_config(argv)
    if parser is None:
        return {}
    known = list(parser.get())
    unknown = {}
    for name in args:
        if name in RUN_ARGUMENTS or name in parser:
            continue
        unknown[name] = difflib.get_close_matches(name.split("#")[0], known, n=3, cutoff=0.6)
    return unknown


def warn_unknown_overrides(argv: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Log a warning for each override id of this ``python -m monai.bundle run`` that no config defines.

    Does nothing when the bundle runs from Python (``monai.bundle.run(...)``, as MONAI Label does): only the
    command line's overrides can be read back. Returns what it warned about.
    """
    argv = sys.argv if argv is None else list(argv)
    if not argv or not argv[0].replace("\\", "/").endswith("monai/bundle/__main__.py"):
        return {}
    unknown = unknown_overrides(argv[1:])
    for name, close in unknown.items():
        hint = f"; did you mean {' or '.join('--' + c for c in close)}?" if close else ""
        logger.warning(f"--{name} is not an id of these configs and changes nothing{hint}")
    return unknown


# --- MONAI 1.6.1: a one-line summary of why a bundle run stopped, printed after the traceback ----------------------
# MONAI 1.6.1's monai.utils.module.instantiate wraps an error raised while a config item is built (a bad case found by
# ``validated_datalist`` or ``ValidateSampled``) in ``RuntimeError("Failed to instantiate ...")``, so the traceback
# ends with MONAI's wrapper and the message that matters sits in the middle. ``initialize`` calls
# :func:`install_error_summary`, which makes an uncaught exception end with its root cause, e.g.::
#
#     ERROR (root cause): ValueError: Case hippocampus_042: 'image' has 8 NaN or infinite voxel(s).


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of the ``__cause__`` / ``__context__`` chain of ``error``."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


WORKER_TRACEBACK = "Original Traceback (most recent call last):"
"""How PyTorch's DataLoader re-raises an error of a worker process: the worker's traceback, as text, in the message
(``Caught ValueError in DataLoader worker process 0. Original Traceback ...``), whose last line is the error."""


def root_cause_line(error: BaseException) -> str | None:
    """``"<type>: <message>"`` of the root cause of ``error``; ``None`` when ``error`` is its own root cause and
    not a DataLoader worker's error (its traceback already ends with the line)."""
    cause = root_cause(error)
    message = str(cause).strip()
    if WORKER_TRACEBACK in message:
        return message.splitlines()[-1].strip()
    if cause is error:
        return None
    message = " ".join(message.split()) if "\n" not in message else message
    return f"{type(cause).__name__}: {message}"


# MONAI 1.6.1's monai.bundle.workflows.ConfigWorkflow.run, for a run id the configs lack, raises
# ValueError(f"run ID '{run_id}' doesn't exist in the config file.")
_MISSING_RUN_ID = re.compile(r"run ID '(?P<id>[^']*)' doesn't exist in the config file")


def missing_run_id_line(error: BaseException, argv: list[str]) -> str | None:
    """For MONAI's ``run ID 'x' doesn't exist in the config file``: the run ids that these configs do have."""
    match = _MISSING_RUN_ID.search(str(error))
    if match is None:
        return None
    parser = command_line_config(argv[1:])
    known = run_ids(parser) if parser is not None else []
    return f"there is no run id {match['id']!r} in these configs; their run ids: {', '.join(known) or 'none'}"


def install_error_summary() -> None:
    """Chain a ``sys.excepthook`` that prints the usual traceback, then the root cause on one line (stderr)."""
    if getattr(sys.excepthook, "_lightmedseg_error_summary", False):
        return
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(exc_type, exc, tb)
        line = missing_run_id_line(exc, sys.argv) or root_cause_line(exc)
        if line is not None:
            print(f"\nERROR (root cause): {line}", file=sys.stderr, flush=True)

    hook._lightmedseg_error_summary = True  # type: ignore[attr-defined]
    sys.excepthook = hook


# --- MONAI 1.6.1 CheckpointSaver / ignite 0.5.2 Checkpoint: private state -----------------------------------------
# MONAI 1.6.1's monai.handlers.CheckpointSaver.__init__ builds up to three ignite Checkpoints (final, best key metric,
# every interval) in the private attributes ``_final_checkpoint``, ``_key_metric_checkpoint``, ``_interval_checkpoint``,
# each with MONAI's private ``_DiskSaver`` (``atomic=False``: writes in place; ``filename``: the fixed file name, as
# ``model.pt``), and offers no way to replace those save handlers. ignite 0.5.2's ignite.handlers.Checkpoint keeps the
# files it saved, as ``(priority, filename)`` pairs, under the key ``"_saved"`` of its ``state_dict`` and
# ``load_state_dict``.


def _checkpoints(saver: CheckpointSaver) -> list[Checkpoint]:
    """The ignite ``Checkpoint`` objects MONAI's ``saver`` writes with (final, key metric, interval; those it has)."""
    checkpoints = (saver._final_checkpoint, saver._key_metric_checkpoint, saver._interval_checkpoint)
    return [checkpoint for checkpoint in checkpoints if checkpoint is not None]


def replace_save_handlers(saver: CheckpointSaver, make_handler: Callable[[str | None], Any]) -> None:
    """Give each ignite ``Checkpoint`` of MONAI's ``saver`` the save handler ``make_handler(filename)``, where
    ``filename`` is the fixed file name that MONAI's own in-place handler has (as ``model.pt``), else ``None``."""
    for checkpoint in _checkpoints(saver):
        checkpoint.save_handler = make_handler(checkpoint.save_handler.filename)


def key_metric_checkpoint(saver: CheckpointSaver) -> Checkpoint | None:
    """The ignite ``Checkpoint`` of MONAI's ``saver`` that keeps the best model by key metric (``save_key_metric``)."""
    return saver._key_metric_checkpoint


def saved_checkpoints(checkpoint: Checkpoint) -> list[tuple[float, str]]:
    """``(priority, filename)`` of the files an ignite ``Checkpoint`` saved and still keeps, lowest priority first."""
    return [(priority, filename) for priority, filename in checkpoint.state_dict()["_saved"]]


def restore_saved_checkpoints(checkpoint: Checkpoint, saved: Iterable[tuple[float, str]]) -> None:
    """Make an ignite ``Checkpoint`` take ``saved`` (as :func:`saved_checkpoints` returns) for the files it saved."""
    checkpoint.load_state_dict({"_saved": list(saved)})


# --- MONAI 1.6.1 ImageWriter: every trailing singleton axis squeezed -----------------------------------------------
# monai.data.image_writer.ImageWriter.convert_to_channel_last(squeeze_end_dims=True) squeezes *every* trailing
# size-1 axis once the channel is last, so the label map of a one-slice 3D image (X, Y, 1) was written as (X, Y),
# unlike its input.


class KeepOneSliceAxes:
    """Mixin for a MONAI ``ImageWriter`` (before it in the bases): ``squeeze_end_dims`` drops a size-1 channel only
    and keeps the spatial axes (:func:`lightmedseg_bundle.inference.atomic_image_writer` uses it)."""

    @classmethod
    def convert_to_channel_last(cls, data, channel_dim=0, squeeze_end_dims=True, spatial_ndim=3, contiguous=False):
        data = super().convert_to_channel_last(  # pytype: disable=attribute-error
            data, channel_dim, False, spatial_ndim, contiguous
        )
        if squeeze_end_dims and data.shape[-1] == 1 and (spatial_ndim is None or len(data.shape) > spatial_ndim):
            data = data[..., 0]
        return data


# --- MONAI 1.6.1 Spacingd: entries named like the key that are no meta dictionaries -------------------------------
# After resampling ``key``, MONAI 1.6.1's monai.transforms.Spacingd.__call__ calls ``.update(meta)`` on *every* entry of
# the data dictionary whose name starts with ``<key>_``, assuming each is a meta dictionary. MONAI Label's inference
# adds ``image_path`` (a string) next to ``image``, so the bundle's preprocessing failed there with
# ``AttributeError: 'str' object has no attribute 'update'``.


def split_non_meta_entries(
    data: Mapping[Hashable, Any], keys: Iterable[Hashable]
) -> tuple[dict[Hashable, Any], dict[Hashable, Any]]:
    """``(data without them, the entries set aside)``: the entries named ``<key>_...`` for a key of ``keys`` that
    are not dictionaries (``image_path``), which ``Spacingd`` would fail on; put them back after it ran."""
    d = dict(data)
    prefixes = tuple(f"{key}_" for key in keys)
    set_aside = {k: d.pop(k) for k in list(d) if isinstance(k, str) and k.startswith(prefixes)
                 and not isinstance(d[k], dict)}  # fmt: skip
    return d, set_aside


# --- torch 2.13 CPU argmax over a short axis -----------------------------------------------------------------------
# torch.argmax over the class axis of a CPU tensor with a few classes takes 10-15x as long as torch.max over the same
# axis, which returns the same indices (the first maximum; a NaN counts as the maximum in both): 14 against 1 ms for
# 3 x 48x64x48 on 2 threads. MONAI 1.6.1's AsDiscrete(argmax=True) calls torch.argmax, on every training iteration
# (the training Dice: 24 ms of a 260 ms iteration) and on every predicted volume.


def argmax(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """``torch.argmax(x, dim, keepdim)``, computed as ``torch.max(x, dim, keepdim).indices``."""
    return torch.max(x, dim=dim, keepdim=keepdim).indices
