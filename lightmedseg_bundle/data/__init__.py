"""Datalists for the bundle configs, datalist checks, case names and the synthetic demo dataset.

- :mod:`.datalist`: Decathlon ``dataset.json`` train/validation split, the cases to evaluate, inference image lists.
- :mod:`.datalist_validation`: a check of a whole datalist, one streaming read per file, before a run starts.
- :mod:`.case_names`: the name of a case, as MONAI's ``SaveImaged`` forms it from the input's path.
- :mod:`.demo`: a small, deterministic synthetic dataset shaped like MSD Task04 (hippocampus).
"""

from lightmedseg_bundle.data.case_names import case_name
from lightmedseg_bundle.data.datalist import evaluation_datalist, image_datalist, limit_cases, train_val_split
from lightmedseg_bundle.data.datalist_validation import validated_datalist
from lightmedseg_bundle.data.demo import DEMO_LABELS, DEMO_SHAPE, make_demo_dataset

__all__ = [
    "DEMO_LABELS",
    "DEMO_SHAPE",
    "case_name",
    "evaluation_datalist",
    "image_datalist",
    "limit_cases",
    "make_demo_dataset",
    "train_val_split",
    "validated_datalist",
]
