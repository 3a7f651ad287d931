"""Command-line overrides (``--id value``) of ``python -m monai.bundle run`` that no config of the run defines.

MONAI's bundle CLI (``monai.bundle.scripts.run``) puts every ``--id value`` into the config, whether an id of that
name exists or not, and only echoes it in its input summary: a typo, or an id of another bundle, is silently ignored
(``--max_epoch 2`` then trains the full schedule). :func:`warn_unknown_overrides`, called first in each config's
``initialize``, logs a warning naming each such id and the closest ids the configs do define.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
import os
import sys
from collections.abc import Sequence

from monai.bundle import ConfigParser

__all__ = ["RUN_ARGUMENTS", "command_line_config", "run_ids", "unknown_overrides", "warn_unknown_overrides"]

logger = logging.getLogger(__name__)

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
