"""Datalists for the bundle configs: Decathlon train/validation split, the cases to evaluate, inference image lists."""

from __future__ import annotations

import glob
import json
import logging
import os
import random
from collections.abc import Sequence
from typing import Any

from monai.data import load_decathlon_datalist

__all__ = ["ALL_CASES", "evaluation_datalist", "image_datalist", "limit_cases", "train_val_split"]

logger = logging.getLogger(__name__)

#: the ``fold`` that trains on every case of the folds file's dataset (the model that ships, after cross-validation)
ALL_CASES = "all"


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
    fold: int | str | None = None,
    folds_file: str | None = None,
) -> dict[str, list[dict]]:
    """Read a Decathlon ``dataset.json`` and return ``{"training": [...], "validation": [...]}``.

    With ``fold`` (0 to 4 for ``configs/msd_hippocampus_folds.json``), the validation cases are those that
    ``folds_file`` lists for that fold and every other case trains (see ``_fold_split``); ``val_fraction`` and
    ``seed`` are then unused. ``fold="all"`` trains on every case and validates on fold 0's cases, which are then
    trained on too (monitoring only). ``None`` (or ``"null"``/``"none"`` from the command line) gives the split below.

    If the file has a ``"validation"`` list it is used as is. Otherwise the ``data_list_key`` list is split
    deterministically: the cases are shuffled with ``random.Random(seed)`` and the last
    ``round(val_fraction * n)`` (at least one when there are two or more cases) form the validation set.
    The same file, fraction and seed always give the same split, so ``evaluate.json`` scores exactly the
    cases that ``train.json`` held out.

    Relative paths are resolved against ``base_dir`` (default: the folder of ``datalist_file``);
    absolute paths are kept.

    Raises:
        ValueError: the split has no training or no validation case (e.g. a datalist of one case).
    """
    _check_datalist_file(datalist_file)
    if _given(fold):
        split = _fold_split(datalist_file, folds_file, fold, data_list_key, base_dir)
    else:
        split = _fraction_split(datalist_file, val_fraction, seed, base_dir, data_list_key)
    for key in ("training", "validation"):
        if not split[key]:
            raise ValueError(
                f"{datalist_file}: the split has no {key} case ({len(split['training'])} training / "
                f"{len(split['validation'])} validation). Training needs at least one of each: model.pt is the "
                "best model by validation Dice. List at least 2 labelled cases (a 'validation' list is used as is)."
            )
    return split


def _fraction_split(
    datalist_file: str, val_fraction: float, seed: int, base_dir: str | None, data_list_key: str
) -> dict[str, list[dict]]:
    """The split of ``train_val_split`` without a fold: the file's own ``validation`` list, or a seeded draw."""
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


def _fold_split(
    datalist_file: str, folds_file: str, fold: int | str, data_list_key: str, base_dir: str | None
) -> dict[str, list[dict]]:
    """Cross-validation fold ``fold`` of a Decathlon ``dataset.json``: ``{"training": [...], "validation": [...]}``.

    ``folds_file`` (e.g. ``configs/msd_hippocampus_folds.json``) lists, for each fold, the images of its validation
    cases relative to ``base_dir`` (default: the folder of ``datalist_file``), e.g.
    ``"./imagesTr/hippocampus_003.nii.gz"``; every other case of the ``data_list_key`` list trains. Cases keep the
    order of ``dataset.json``.

    Raises:
        ValueError: ``fold`` is not one of the file's folds, or the fold names cases that ``dataset.json`` lacks.
    """
    with open(folds_file) as f:
        folds = json.load(f)["folds"]
    all_cases = _is_all_cases(fold)
    try:
        index = 0 if all_cases else int(fold)
    except (TypeError, ValueError):
        index = -1
    if isinstance(fold, bool) or not (all_cases or str(index) == str(fold).strip()) or not 0 <= index < len(folds):
        raise ValueError(
            f"fold must be an integer from 0 to {len(folds) - 1} ({folds_file}), {ALL_CASES!r} or null, got {fold!r}"
        )
    fold = index
    base_dir = base_dir or os.path.dirname(os.path.abspath(datalist_file))
    cases = load_decathlon_datalist(datalist_file, True, data_list_key, base_dir)
    held_out = {os.path.normpath(os.path.join(base_dir, image)) for image in folds[fold]["validation"]}
    listed = {os.path.normpath(case["image"]) for case in cases}
    missing = sorted(held_out - listed)
    if missing:
        raise ValueError(
            f"fold {fold} of {folds_file} holds out {len(missing)} case(s) that {datalist_file} does not list, e.g. "
            f"{missing[0]}: the folds are those of MSD Task04 Hippocampus; use --fold null for another dataset"
        )
    split: dict[str, list[dict]] = {"training": [], "validation": []}
    for case in cases:
        split["validation" if os.path.normpath(case["image"]) in held_out else "training"].append(case)
    if all_cases:
        logger.warning(
            f"{datalist_file}: fold {ALL_CASES!r}, training on all {len(cases)} cases; the validation runs on fold 0's "
            f"{len(split['validation'])} cases, which are trained on as well: its Dice follows the training and "
            "estimates nothing (the cross-validation folds 0-4 do)"
        )
        return {"training": list(cases), "validation": split["validation"]}
    logger.info(
        f"{datalist_file}: fold {fold} of {folds_file}, {len(split['training'])} training / "
        f"{len(split['validation'])} validation"
    )
    return split


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


def evaluation_datalist(
    datalist_file: str | None = None,
    eval_list: str | None = None,
    image_dir: str | None = None,
    label_dir: str | None = None,
    pattern: str = "*.nii.gz",
    val_fraction: float = 0.2,
    seed: int = 0,
    fold: int | str | None = None,
    folds_file: str | None = None,
) -> list[dict]:
    """The labelled cases ``evaluate.json`` scores, ``[{"image": ..., "label": ...}, ...]``, from one of:

    - ``label_dir``: every image of ``image_dir`` matching ``pattern``, each with the file of the same name in
      ``label_dir`` (a folder of your own labelled cases);
    - ``eval_list``: every case of that list of the Decathlon ``datalist_file`` (``"validation"``, ``"test"``,
      ``"training"``, or ``"all"`` for training and validation together), scored as a whole, without a split;
    - neither: the validation cases of the training split (:func:`train_val_split` with the same arguments).

    Raises:
        FileNotFoundError: a folder or file is missing, or an image has no label of the same name.
        ValueError: ``eval_list`` names a list the file does not hold, or it is empty.
    """
    if _given(label_dir):
        if not os.path.isdir(str(label_dir)) or not _given(image_dir) or not os.path.isdir(str(image_dir)):
            raise FileNotFoundError(
                f"--label_dir {label_dir!r} and --input_dir {image_dir!r} must both be folders: the images "
                f"(matching --input_pattern {pattern!r}) and their labels under the same file names"
            )
        images = sorted(glob.glob(os.path.join(str(image_dir), pattern)))
        cases = [{"image": path, "label": os.path.join(str(label_dir), os.path.basename(path))} for path in images]
        unlabelled = [case["image"] for case in cases if not os.path.isfile(case["label"])]
        if not cases or unlabelled:
            raise FileNotFoundError(
                f"no images matching {pattern!r} in {image_dir}" if not cases else
                f"{len(unlabelled)} image(s) of {image_dir} have no label of the same name in {label_dir}, e.g. "
                f"{os.path.basename(unlabelled[0])}"
            )  # fmt: skip
        logger.info(f"evaluating {len(cases)} case(s): images of {image_dir}, labels of {label_dir}")
        return cases
    if _given(eval_list):
        _check_datalist_file(str(datalist_file))
        keys = ["training", "validation"] if str(eval_list) == "all" else [str(eval_list)]
        with open(str(datalist_file)) as f:
            content = json.load(f)
        absent = [key for key in keys if key not in content]
        if absent and str(eval_list) != "all":
            lists = sorted(key for key, value in content.items() if isinstance(value, list))
            raise ValueError(f"{datalist_file} has no {eval_list!r} list; its lists: {lists}")
        cases = []
        for key in keys:
            if key in content:
                cases += load_decathlon_datalist(str(datalist_file), True, key)
        if not cases:
            raise ValueError(f"the {eval_list!r} list of {datalist_file} holds no case")
        logger.info(f"evaluating the {eval_list!r} list of {datalist_file}: {len(cases)} case(s)")
        return cases
    if _is_all_cases(fold):
        raise ValueError(
            f"--fold {ALL_CASES} trains on every case, so it holds none out to score: evaluate a model of fold "
            f"{ALL_CASES!r} on your own labelled cases (--label_dir with --input_dir, or --eval_list), or give a fold "
            "from 0 to 4"
        )
    return train_val_split(str(datalist_file), val_fraction, seed, fold=fold, folds_file=folds_file)["validation"]


def _is_all_cases(fold: Any) -> bool:
    """Whether ``fold`` asks for training on every case (``--fold all``, any case and spacing)."""
    return str(fold).strip().lower() == ALL_CASES


def _given(value: Any) -> bool:
    return value is not None and str(value).strip().lower() not in ("", "null", "none")


def limit_cases(datalist: Sequence[dict], num_cases: int | None) -> list[dict]:
    """The first ``num_cases`` items (all when ``None``); a value below 1 is an error."""
    if num_cases is None:
        return list(datalist)
    if int(num_cases) < 1:
        raise ValueError(f"the number of cases must be at least 1 or null (all), got {num_cases}")
    return list(datalist)[: int(num_cases)]
