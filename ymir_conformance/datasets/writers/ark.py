"""ARK text (contract §4.1): ``class_id, xmin, ymin, xmax, ymax, anno_quality, rotate_angle`` per line."""
from __future__ import annotations

from . import Labelled

ANNO_QUALITY = -1.0
ROTATE_ANGLE = 0.0


def render_ark(labelled: Labelled, *, legacy: bool = False) -> str:
    """2.x: 7 columns; ``legacy`` (ymir 1.1): 5 columns. Empty string for an image without objects."""
    lines = []
    for class_id, obj in labelled:
        x, y, _, _ = obj.box
        line = f"{class_id}, {x}, {y}, {obj.xmax}, {obj.ymax}"
        if not legacy:
            line += f", {ANNO_QUALITY}, {ROTATE_ANGLE}"
        lines.append(line + "\n")
    return "".join(lines)
