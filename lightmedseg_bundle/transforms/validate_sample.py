"""A fail-fast check of a loaded image/label pair, run right after loading."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import convert_to_tensor

from lightmedseg_bundle.transforms.error_messages import case_file, format_values


class ValidateSampled(MapTransform):
    """
    Check a loaded sample and raise one ``ValueError`` naming the case (the ``filename_or_obj`` of the image
    metadata) and every problem found, instead of letting it fail later with an unrelated shape error or train
    on broken data. Put it right after ``LoadImaged`` and ``EnsureChannelFirstd``; it returns the data unchanged.

    The checks:

    - every key in ``keys`` has the spatial shape and the affine (within ``affine_atol``) of the first key;
    - every key in ``keys`` is free of NaN and infinite values;
    - ``image_key`` has ``num_channels`` channels, when given;
    - ``label_key`` only holds the class indices ``0 .. num_classes - 1``, when given (the offending values are
      listed).

    Args:
        keys: keys of the arrays whose geometry and values to check; the first one is the geometric reference.
        image_key: key of the image whose channel count is checked.
        label_key: key of the label map whose values are checked.
        num_channels: number of image channels the configuration expects; None skips the check.
        num_classes: number of classes the configuration declares, background included; None skips the check.
        affine_atol: absolute tolerance, in the units of the affine (usually mm), for two affines to match.
        allow_missing_keys: don't raise an exception if a key is missing.

    Example::

        Compose([
            LoadImaged(keys=["image", "label"]),
            EnsureChannelFirstd(keys=["image", "label"]),
            ValidateSampled(keys=["image", "label"], num_channels=1, num_classes=3),
            ...
        ])
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        image_key: str = "image",
        label_key: str = "label",
        num_channels: int | None = None,
        num_classes: int | None = None,
        affine_atol: float = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.image_key = image_key
        self.label_key = label_key
        self.num_channels = num_channels
        self.num_classes = num_classes
        self.affine_atol = affine_atol

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """
        Raises:
            ValueError: when any check fails, naming the case and listing the problems.
        """
        d = dict(data)
        problems = []
        reference_key = None
        for key in self.key_iterator(d):
            if reference_key is None:
                reference_key = key
            else:
                problems += self._geometry_problems(key, d[key], reference_key, d[reference_key])
            values = convert_to_tensor(d[key], track_meta=False)
            if values.is_floating_point() and not torch.isfinite(values).all():
                num_bad = int((~torch.isfinite(values)).sum())
                problems.append(f"{key!r} has {num_bad} NaN or infinite voxel(s)")
        if self.num_channels is not None and self.image_key in d:
            got = d[self.image_key].shape[0]
            if got != self.num_channels:
                problems.append(
                    f"{self.image_key!r} has {got} channel(s), the configuration expects {self.num_channels}"
                )
        if self.num_classes is not None and self.label_key in d:
            label = convert_to_tensor(d[self.label_key], track_meta=False)
            invalid = (label < 0) | (label >= self.num_classes) | (label != torch.round(label))
            if invalid.any():
                problems.append(
                    f"{self.label_key!r} holds values {format_values(label[invalid])} outside the declared classes "
                    f"0..{self.num_classes - 1}"
                )
        if problems:
            name = case_file(d.get(self.image_key, d.get(self.label_key)))
            raise ValueError(f"Case {name}: " + "; ".join(problems) + ".")
        return d

    def _geometry_problems(self, key: Hashable, img: Any, reference_key: Hashable, reference: Any) -> list[str]:
        """Describe how the spatial shape and affine of ``img`` differ from those of ``reference``."""
        if tuple(img.shape[1:]) != tuple(reference.shape[1:]):
            return [
                f"{key!r} spatial shape {tuple(img.shape[1:])} does not match "
                f"{reference_key!r} spatial shape {tuple(reference.shape[1:])}"
            ]
        if isinstance(img, MetaTensor) and isinstance(reference, MetaTensor):
            affine, reference_affine = img.affine.double(), reference.affine.double()
            if not torch.allclose(affine, reference_affine, rtol=0.0, atol=self.affine_atol):
                difference = (affine - reference_affine).abs().max().item()
                return [
                    f"{key!r} affine differs from the {reference_key!r} affine by up to {difference:.4g} "
                    f"(tolerance {self.affine_atol}): {affine.tolist()} vs {reference_affine.tolist()}"
                ]
        return []
