"""Datalists for the bundle configs: Decathlon train/validation split and inference image lists."""

from __future__ import annotations

import glob
import json
import logging
import os
import random
from collections.abc import Sequence

from monai.data import load_decathlon_datalist

__all__ = ["train_val_split", "image_datalist", "limit_cases"]

logger = logging.getLogger(__name__)


def _check_datalist_file(datalist_file: str) -> None:
    if not os.path.isfile(datalist_file):
        raise FileNotFoundError(
            f"datalist file not found: {datalist_file!r}. Point the bundle at a Decathlon-layout dataset with "
            "--dataset_dir /path/to/Task04_Hippocampus (holding dataset.json, imagesTr/, labelsTr/) "
            "or give the file itself with --datalist_file /path/to/dataset.json."
        )


def train_val_split(
    datalist_file: str,
    val_fraction: float = 0.2,
    seed: int = 0,
    base_dir: str | None = None,
    data_list_key: str = "training",
) -> dict[str, list[dict]]:
    """Read a Decathlon ``dataset.json`` and return ``{"training": [...], "validation": [...]}``.

    If the file has a ``"validation"`` list it is used as is. Otherwise the ``data_list_key`` list is split
    deterministically: the cases are shuffled with ``random.Random(seed)`` and the last
    ``round(val_fraction * n)`` (at least one when there are two or more cases) form the validation set.
    The same file, fraction and seed always give the same split, so ``evaluate.json`` scores exactly the
    cases that ``train.json`` held out.

    Relative paths are resolved against ``base_dir`` (default: the folder of ``datalist_file``);
    absolute paths are kept.
    """
    _check_datalist_file(datalist_file)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    base_dir = base_dir or os.path.dirname(os.path.abspath(datalist_file))
    cases = load_decathlon_datalist(datalist_file, True, data_list_key, base_dir)
    try:
        validation = load_decathlon_datalist(datalist_file, True, "validation", base_dir)
    except ValueError:  # the file has no "validation" list
        validation = None
    if validation:
        logger.info(f"{datalist_file}: using its own split, {len(cases)} training / {len(validation)} validation")
        return {"training": list(cases), "validation": list(validation)}

    order = list(range(len(cases)))
    random.Random(seed).shuffle(order)
    n_val = int(round(float(val_fraction) * len(cases)))
    if val_fraction > 0 and n_val == 0 and len(cases) >= 2:
        n_val = 1
    train_idx, val_idx = order[: len(cases) - n_val], order[len(cases) - n_val :]
    logger.info(
        f"{datalist_file}: split {len(cases)} cases into {len(train_idx)} training / {len(val_idx)} validation "
        f"(val_fraction={val_fraction}, seed={seed})"
    )
    return {"training": [cases[i] for i in sorted(train_idx)], "validation": [cases[i] for i in sorted(val_idx)]}


def image_datalist(
    input_dir: str | None = None,
    pattern: str = "*.nii.gz",
    datalist_file: str | None = None,
    data_list_key: str = "test",
    image_key: str = "image",
) -> list[dict]:
    """Images to run inference on, as ``[{"image": path}, ...]``.

    With ``datalist_file`` the ``data_list_key`` list of that Decathlon ``dataset.json`` is read (items may be
    plain paths or dicts with an ``image`` entry); otherwise every file in ``input_dir`` matching ``pattern``
    (sorted). Raises a clear error when nothing is found.
    """
    if datalist_file:
        _check_datalist_file(datalist_file)
        with open(datalist_file) as f:
            items = json.load(f).get(data_list_key, [])
        base_dir = os.path.dirname(os.path.abspath(datalist_file))
        paths = [item if isinstance(item, str) else item[image_key] for item in items]
        data = [{image_key: os.path.normpath(os.path.join(base_dir, p))} for p in paths]
        source = f"the {data_list_key!r} list of {datalist_file}"
    else:
        if not input_dir or not os.path.isdir(input_dir):
            raise FileNotFoundError(
                f"input_dir {input_dir!r} is not a folder. Give the images with --input_dir /path/to/images "
                "(all files matching --input_pattern, default '*.nii.gz') or --datalist_file dataset.json."
            )
        data = [{image_key: path} for path in sorted(glob.glob(os.path.join(input_dir, pattern)))]
        source = f"{os.path.join(input_dir, pattern)}"
    if not data:
        raise FileNotFoundError(f"no images found in {source}")
    logger.info(f"inference on {len(data)} image(s) from {source}")
    return data


def limit_cases(datalist: Sequence[dict], num_cases: int | None) -> list[dict]:
    """The first ``num_cases`` items (all when ``None``); a value below 1 is an error."""
    if num_cases is None:
        return list(datalist)
    if int(num_cases) < 1:
        raise ValueError(f"the number of cases must be at least 1 or null (all), got {num_cases}")
    return list(datalist)[: int(num_cases)]
