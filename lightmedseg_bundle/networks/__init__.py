"""Networks of the bundle: LightMedSeg, and the other lightweight 3D segmenters it is compared with.

Each is selected in a config by ``network_def``; ``configs/networks/<name>.json`` swaps it in (see
docs/architecture.md for each network and the choices made where its paper is vague).
"""

from .hrmedseg import HRMedSeg
from .lightmedseg import LightMedSeg
from .refineformer3d import RefineFormer3D
from .segmaformer import SegMaFormer
from .size_divisible import size_divisible
from .veloxseg import VeloxSeg

__all__ = ["HRMedSeg", "LightMedSeg", "RefineFormer3D", "SegMaFormer", "VeloxSeg", "size_divisible"]
