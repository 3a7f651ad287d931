"""3D Slicer markups files (``.mrk.json``): a point list that loads onto the image it was computed from."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic_output import atomic_path

__all__ = ["MARKUPS_SCHEMA", "point_list_markups", "save_markups"]

#: the Slicer markups JSON schema the files follow
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)


def point_list_markups(
    positions_lps: np.ndarray,
    labels: Sequence[str],
    descriptions: Sequence[str] | None = None,
    name: str = "anchors",
    color: Sequence[float] = (1.0, 0.8, 0.0),
) -> dict:
    """
    A Slicer point list ("Fiducial" markup) with one control point per row of ``positions_lps``.

    Positions are written in the LPS coordinate system, in millimetres: the convention of Slicer's files, which
    Slicer converts to its internal RAS on loading, so the points land where they belong in any image loaded from
    a file with the same physical coordinates (NIfTI, NRRD or DICOM).

    Args:
        positions_lps: (K, 3) physical LPS coordinates in mm.
        labels: K labels shown next to the points.
        descriptions: optional K descriptions (shown in Slicer's control point table).
        name: name of the markups node.
        color: RGB display colour in [0, 1].
    """
    positions = np.asarray(positions_lps, dtype=np.float64).reshape(-1, 3)
    if len(labels) != len(positions) or (descriptions is not None and len(descriptions) != len(positions)):
        raise ValueError(f"expected {len(positions)} labels and descriptions, got {len(labels)}")
    descriptions = descriptions or [""] * len(positions)
    control_points = [
        {
            "id": str(index + 1),
            "label": str(label),
            "description": str(description),
            "associatedNodeID": "",
            "position": [float(v) for v in position],
            "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
            "selected": True,
            "locked": True,
            "visibility": True,
            "positionStatus": "defined",
        }
        for index, (position, label, description) in enumerate(zip(positions, labels, descriptions, strict=True))
    ]
    return {
        "@schema": MARKUPS_SCHEMA,
        "markups": [
            {
                "type": "Fiducial",
                "name": name,
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": True,
                "fixedNumberOfControlPoints": True,
                "labelFormat": "%N-%d",
                "controlPoints": control_points,
                "measurements": [],
                "display": {
                    "visibility": True,
                    "opacity": 1.0,
                    "color": [float(c) for c in color],
                    "selectedColor": [float(c) for c in color],
                    "pointLabelsVisibility": True,
                    "glyphType": "Sphere3D",
                },
            }
        ],
    }


def save_markups(markups: dict, path: str | os.PathLike) -> Path:
    """Write ``markups`` as JSON to ``path``, atomically (its folder is created if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(markups, indent=2))
    return path
