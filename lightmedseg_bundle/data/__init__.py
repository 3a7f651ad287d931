"""Datalist checks, case names and the synthetic demo dataset."""

from lightmedseg_bundle.data.case_names import case_name
from lightmedseg_bundle.data.datalist_validation import validated_datalist
from lightmedseg_bundle.data.demo import DEMO_LABELS, DEMO_SHAPE, make_demo_dataset

__all__ = ["DEMO_LABELS", "DEMO_SHAPE", "case_name", "make_demo_dataset", "validated_datalist"]
