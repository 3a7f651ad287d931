"""The workarounds of ``lightmedseg_bundle/workarounds.py``, and for each one a test that upstream still needs it.

Each ``test_upstream_...`` exercises the upstream behaviour itself (MONAI 1.6.1, pytorch-ignite 0.5.2, fire 0.7.1,
torch 2.13): when one fails, upstream has changed, and the workaround it names (or its part) can go, or must follow.
The staged installer's upstream test (``monai.bundle.download`` trusts a corrupt zip) is
``test_monai_download_of_a_corrupt_zip_leaves_a_bundle_a_second_call_trusts`` in ``test_release_download.py``, beside
the installer's own tests.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import fire
import monai.bundle
import pytest
import torch
from ignite.engine import Engine
from ignite.handlers import Checkpoint, DiskSaver
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.data import MetaTensor
from monai.handlers import CheckpointSaver
from monai.transforms import LoadImaged, Orientationd, Spacingd

from lightmedseg_bundle.workarounds import (
    KNOWN_HARMLESS_LOGGERS,
    KNOWN_HARMLESS_WARNINGS,
    argmax,
    as_bool,
    key_metric_checkpoint,
    missing_run_id_line,
    replace_save_handlers,
    restore_saved_checkpoints,
    root_cause_line,
    saved_checkpoints,
    split_non_meta_entries,
)

# --- as_bool: fire leaves --resume true a string -------------------------------------------------------------------


def test_upstream_fire_leaves_a_lowercase_true_a_string():
    """``python -m monai.bundle run`` parses its command line with ``fire``: ``True`` is a bool, ``true`` a string."""
    assert "fire.Fire()" in (Path(monai.bundle.__file__).parent / "__main__.py").read_text()
    given = {}
    fire.Fire(lambda **overrides: given.update(overrides), command=["--resume", "true", "--amp", "True", "--tta=false"])
    assert given == {"resume": "true", "amp": True, "tta": "false"}


TRUE_VALUES = [True, "true", "True", 1, "yes"]
FALSE_VALUES = [False, "false", "False", 0, None]


@pytest.mark.parametrize("value, expected", [(v, True) for v in TRUE_VALUES] + [(v, False) for v in FALSE_VALUES])
def test_as_bool(value, expected):
    assert as_bool(value) is expected


def test_as_bool_rejects_typos():
    with pytest.raises(ValueError):
        as_bool("ture")


# --- silence_known_harmless_messages: MONAI messages a user cannot act on ------------------------------------------


def test_upstream_monai_still_emits_each_silenced_message(caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        for name in KNOWN_HARMLESS_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        LoadImaged(keys="image")
        Orientationd(keys="image", axcodes="RAS")
    messages = [str(w.message) for w in caught]
    for pattern in KNOWN_HARMLESS_WARNINGS:
        assert any(re.match(pattern, m) for m in messages), f"MONAI no longer warns {pattern!r}: drop it"
    for name in KNOWN_HARMLESS_LOGGERS:
        assert any(r.name == name for r in caplog.records), f"MONAI's {name} no longer logs: drop it"


# --- install_error_summary: MONAI wraps the error of a config item; its missing run id names no run ids ------------


def test_upstream_monai_wraps_the_error_of_a_config_item_in_a_runtime_error():
    parser = ConfigParser({"bad": {"_target_": "fractions.Fraction", "numerator": "not a number"}})
    with pytest.raises(RuntimeError, match="Failed to instantiate component 'fractions.Fraction'") as caught:
        parser.get_parsed_content("bad")
    assert isinstance(caught.value.__cause__, ValueError)  # the message that matters, in the middle of the traceback
    assert root_cause_line(caught.value) == "ValueError: Invalid literal for Fraction: 'not a number'"


class _BadCaseDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise ValueError(f"Case case_{index}: 'label' has values [7] outside 0..2")


def test_root_cause_of_a_data_loader_worker_error_is_the_workers_own_line():
    loader = torch.utils.data.DataLoader(_BadCaseDataset(), num_workers=1)
    with pytest.raises(RuntimeError) as caught:
        try:
            next(iter(loader))
        except ValueError as error:
            raise RuntimeError("Failed to run the trainer") from error  # as MONAI's config wraps it
    assert "Caught ValueError in DataLoader worker" in str(caught.value.__cause__)
    line = root_cause_line(caught.value)
    assert line == "ValueError: Case case_0: 'label' has values [7] outside 0..2"


def test_upstream_monai_names_a_missing_run_id_without_the_run_ids_there_are(tmp_path):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"initialize": [], "run": ["$None"], "training": "%run"}))
    workflow = ConfigWorkflow(config_file=str(config), meta_file=None, run_id="trainig", workflow_type=None)
    workflow.initialize()
    with pytest.raises(ValueError, match="run ID 'trainig' doesn't exist in the config file") as caught:
        workflow.run()
    argv = ["monai/bundle/__main__.py", "run", "trainig", "--config_file", str(config)]
    line = missing_run_id_line(caught.value, argv)
    assert line == "there is no run id 'trainig' in these configs; their run ids: run, training"


# --- AtomicCheckpointSaver: the private parts of MONAI's CheckpointSaver and ignite's Checkpoint -------------------


def test_upstream_monai_checkpoint_saver_keeps_its_ignite_checkpoints_private(tmp_path):
    save_dict = {"net": torch.nn.Linear(2, 2)}
    kwargs = dict(save_final=True, final_filename="final.pt", save_key_metric=True, key_metric_filename="model.pt")
    saver = CheckpointSaver(str(tmp_path), save_dict, save_interval=1, **kwargs)
    checkpoints = [saver._final_checkpoint, saver._key_metric_checkpoint, saver._interval_checkpoint]
    assert all(isinstance(checkpoint, Checkpoint) for checkpoint in checkpoints)
    assert [checkpoint.save_handler.filename for checkpoint in checkpoints] == ["final.pt", "model.pt", None]
    assert not any(checkpoint.save_handler._atomic for checkpoint in checkpoints)  # in place: AtomicDiskSaver's reason

    replace_save_handlers(saver, lambda filename: ("replaced", filename))
    assert [checkpoint.save_handler for checkpoint in checkpoints] == [
        ("replaced", "final.pt"),
        ("replaced", "model.pt"),
        ("replaced", None),
    ]
    assert key_metric_checkpoint(saver) is saver._key_metric_checkpoint
    assert key_metric_checkpoint(CheckpointSaver(str(tmp_path), save_dict, save_final=True)) is None


def test_upstream_ignite_checkpoint_keeps_its_saved_files_under_a_private_key(tmp_path):
    def checkpoint():
        return Checkpoint(
            {"net": torch.nn.Linear(2, 2)},
            DiskSaver(str(tmp_path), require_empty=False),
            score_function=lambda engine: engine.state.metrics["dice"],
            score_name="dice",
        )

    engine = Engine(lambda engine, batch: None)
    engine.state.metrics = {"dice": 0.75}
    saving = checkpoint()
    saving(engine)
    assert dict(saving.state_dict()) == {"_saved": [(0.75, "net_dice=0.7500.pt")]}
    assert saved_checkpoints(saving) == [(0.75, "net_dice=0.7500.pt")]

    resumed = checkpoint()
    resumed.load_state_dict({"_saved": [(0.75, "net_dice=0.7500.pt")]})
    assert resumed.last_checkpoint == tmp_path / "net_dice=0.7500.pt"
    restored = checkpoint()
    restore_saved_checkpoints(restored, saved_checkpoints(saving))
    assert saved_checkpoints(restored) == saved_checkpoints(saving)


# --- TrainingSpacingd: MONAI's Spacingd fails on a string entry named like the key ---------------------------------


def _image_with_a_path_entry() -> dict:
    affine = torch.diag(torch.tensor([0.5, 1.0, 2.0, 1.0]))
    image = MetaTensor(torch.rand(1, 8, 8, 8), affine=affine, meta={"filename_or_obj": "case.nii.gz"})
    return {"image": image, "image_path": "/data/case.nii.gz", "image_meta_dict": {}}


def test_upstream_monai_spacingd_fails_on_a_string_entry_named_like_the_key():
    """MONAI Label adds ``image_path`` (a string) next to ``image``; MONAI 1.6.1's ``Spacingd`` fails on it."""
    with pytest.raises(AttributeError, match="'str' object has no attribute 'update'"):
        Spacingd("image", pixdim=(1.0, 1.0, 1.0))(_image_with_a_path_entry())


def test_split_non_meta_entries_sets_aside_only_entries_that_are_no_dictionaries():
    data = {**_image_with_a_path_entry(), "label": 1, "label_path": "/data/label.nii.gz"}
    kept, set_aside = split_non_meta_entries(data, ["image"])
    assert set_aside == {"image_path": "/data/case.nii.gz"}
    assert sorted(kept) == ["image", "image_meta_dict", "label", "label_path"]
    out = Spacingd("image", pixdim=(1.0, 1.0, 1.0))(kept)  # what TrainingSpacingd runs, then puts image_path back
    assert out["image"].shape[:3] == (1, 4, 8) and "image_path" not in out


def test_upstream_image_writer_squeezes_every_trailing_singleton_axis():
    """MONAI's ``ImageWriter`` drops the third axis of a one-slice label map; :class:`KeepOneSliceAxes` keeps it."""
    from monai.data import NibabelWriter

    from lightmedseg_bundle.workarounds import KeepOneSliceAxes

    one_slice = torch.zeros(1, 5, 6, 1)  # (C, X, Y, Z) with one slice
    assert NibabelWriter.convert_to_channel_last(one_slice, squeeze_end_dims=True).shape == (5, 6)
    kept = type("KeepingWriter", (KeepOneSliceAxes, NibabelWriter), {})
    assert kept.convert_to_channel_last(one_slice, squeeze_end_dims=True).shape == (5, 6, 1)


def _seconds(fn) -> float:
    import time

    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_upstream_torch_argmax_over_a_few_classes_is_slower_than_max_on_the_cpu():
    """torch 2.13: ``torch.argmax`` over 3 classes of a 48x64x48 volume takes 10-15x as long as ``torch.max``; a
    ratio under 3 means upstream has caught up and :func:`argmax` can go (best of 5 each, interleaved, on one thread,
    where a busy machine affects both alike: about 9x there)."""
    probabilities = torch.rand(3, 48, 64, 48)
    slow, fast = float("inf"), float("inf")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(5):
            slow = min(slow, _seconds(lambda: torch.argmax(probabilities, dim=0)))
            fast = min(fast, _seconds(lambda: argmax(probabilities, dim=0)))
    finally:
        torch.set_num_threads(threads)
    assert slow > 3 * fast


@pytest.mark.parametrize("dim, keepdim", [(0, True), (1, False), (-1, True)])
def test_argmax_gives_torch_argmax_indices_also_for_ties_and_nan(dim, keepdim):
    x = torch.randint(0, 3, (3, 5, 6, 7)).float()  # many ties
    x[1, 2, 3, 4] = float("nan")
    assert torch.equal(argmax(x, dim=dim, keepdim=keepdim), torch.argmax(x, dim=dim, keepdim=keepdim))


def test_as_discreted_equals_monai_as_discreted_in_values_dtype_and_metadata():
    from monai.transforms import AsDiscrete as MonaiAsDiscrete
    from monai.transforms import AsDiscreted as MonaiAsDiscreted

    from lightmedseg_bundle.transforms import AsDiscrete, AsDiscreted

    pred = MetaTensor(torch.randn(3, 8, 9, 10), affine=torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0])))
    label = MetaTensor(torch.randint(0, 3, (1, 8, 9, 10)).float())
    kwargs = {"keys": ["pred", "label"], "argmax": [True, False], "to_onehot": [3, 3]}
    ours = AsDiscreted(**kwargs)({"pred": pred, "label": label})
    theirs = MonaiAsDiscreted(**kwargs)({"pred": pred, "label": label})
    for key in ("pred", "label"):
        assert torch.equal(ours[key], theirs[key]) and ours[key].dtype == theirs[key].dtype
        assert type(ours[key]) is type(theirs[key]) and torch.equal(ours[key].affine, theirs[key].affine)
    assert ours["pred"].shape == (3, 8, 9, 10)
    label_map = AsDiscrete(argmax=True)(pred)
    assert torch.equal(label_map, MonaiAsDiscrete(argmax=True)(pred)) and label_map.shape == (1, 8, 9, 10)
    array = pred.numpy()
    assert (AsDiscrete(argmax=True)(array) == MonaiAsDiscrete(argmax=True)(array)).all()
    assert type(AsDiscrete(argmax=True)(array)) is type(MonaiAsDiscrete(argmax=True)(array))
