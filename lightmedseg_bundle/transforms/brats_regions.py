"""Conversion of BraTS label maps to the overlapping TC / WT / ET regions used for sigmoid training."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from lightmedseg_bundle.transforms.error_messages import case_file, format_values

#: for each labelling scheme, the label values making up the tumour core, whole tumour and enhancing tumour
BRATS_REGION_SCHEMES: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    # MSD Task01_BrainTumour: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour
    "msd": ((2, 3), (1, 2, 3), (3,)),
    # BraTS 2013-2015: 1 necrosis, 2 edema, 3 non-enhancing tumour, 4 enhancing tumour
    "brats2013": ((1, 3, 4), (1, 2, 3, 4), (4,)),
    # BraTS 2017-2021: 1 necrotic / non-enhancing tumour core, 2 edema, 4 enhancing tumour
    "brats2021": ((1, 4), (1, 2, 4), (4,)),
}


class ConvertBratsLabelsToRegions(Transform):
    """
    Convert a BraTS label map to three binary channels, tumour core (TC), whole tumour (WT) and enhancing tumour
    (ET), for training with sigmoid outputs. The datasets number their labels differently, so the scheme must be
    named:

    - ``"msd"`` (MSD Task01): 1 edema, 2 non-enhancing, 3 enhancing; TC = {2, 3}, WT = {1, 2, 3}, ET = {3}.
    - ``"brats2013"`` (BraTS 2013-2015): 1 necrosis, 2 edema, 3 non-enhancing, 4 enhancing;
      TC = {1, 3, 4}, WT = {1, 2, 3, 4}, ET = {4}.
    - ``"brats2021"`` (BraTS 2017-2021): 1 necrotic/non-enhancing core, 2 edema, 4 enhancing;
      TC = {1, 4}, WT = {1, 2, 4}, ET = {4}.

    Args:
        scheme: the labelling scheme of the input, one of ``"msd"``, ``"brats2013"``, ``"brats2021"``.

    Raises:
        ValueError: when ``scheme`` is unknown.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, scheme: str = "msd") -> None:
        if scheme not in BRATS_REGION_SCHEMES:
            raise ValueError(
                f"Unknown BraTS labelling scheme {scheme!r}; valid schemes: {sorted(BRATS_REGION_SCHEMES)}."
            )
        self.scheme = scheme
        self.regions = BRATS_REGION_SCHEMES[scheme]
        self.valid_values = sorted({0, *(v for region in self.regions for v in region)})

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Args:
            img: label map of shape (1, H, W, D) or (H, W, D).

        Returns:
            the regions, shape (3, H, W, D) in the order TC, WT, ET, with values 0 and 1 in the dtype of ``img``.

        Raises:
            ValueError: when ``img`` holds values the scheme does not define.
        """
        label = convert_to_tensor(img, track_meta=False)
        if label.ndim == 4 and label.shape[0] == 1:
            label = label.squeeze(0)
        unexpected = ~torch.isin(label, torch.tensor(self.valid_values, device=label.device))
        if unexpected.any():
            raise ValueError(
                f"Case {case_file(img)}: label values {format_values(label[unexpected])} are not part of the "
                f"{self.scheme!r} scheme, which uses {self.valid_values}; is the label map in another scheme "
                f"(one of {sorted(BRATS_REGION_SCHEMES)})?"
            )
        regions = torch.stack([torch.isin(label, torch.tensor(r, device=label.device)) for r in self.regions])
        return convert_to_dst_type(regions, img, dtype=img.dtype)[0]


class ConvertBratsLabelsToRegionsd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`ConvertBratsLabelsToRegions`.

    Args:
        keys: keys of the label maps to convert.
        scheme: the labelling scheme of the input, one of ``"msd"``, ``"brats2013"``, ``"brats2021"``.
        allow_missing_keys: don't raise an exception if a key is missing.
    """

    backend = ConvertBratsLabelsToRegions.backend

    def __init__(self, keys: KeysCollection, scheme: str = "msd", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.converter = ConvertBratsLabelsToRegions(scheme=scheme)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
        return d
