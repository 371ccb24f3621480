"""seg-mask (ymir 2.0 only, contract §4.5): one colour PNG per image plus ``labelmap.txt``."""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..palette import class_colour
from ..scene import Scene
from . import Labelled

BACKGROUND = "bg"


def label_colour(class_id: int) -> tuple[int, int, int]:
    return class_colour(class_id)


def render_labelmap(class_names: Sequence[str]) -> str:
    """``<name>:<R>,<G>,<B>::`` lines, background first, then classes by class id."""
    lines = [f"{BACKGROUND}:0,0,0::"]
    for class_id, name in enumerate(class_names):
        r, g, b = label_colour(class_id)
        lines.append(f"{name}:{r},{g},{b}::")
    return "\n".join(lines) + "\n"


def render_seg_mask(scene: Scene, labelled: Labelled) -> bytes | None:
    """The semantic mask PNG (later objects on top); ``None`` when no object has a mask (nothing written)."""
    masked = [(class_id, obj.mask) for class_id, obj in labelled if obj.mask is not None]
    if not masked:
        return None
    labels = np.zeros((scene.height, scene.width), dtype=np.uint16)  # 0 = background
    for class_id, mask in masked:
        labels[mask] = class_id + 1
    lut = np.zeros((max(c for c, _ in masked) + 2, 3), dtype=np.uint8)
    for class_id, _ in masked:
        lut[class_id + 1] = label_colour(class_id)
    buf = io.BytesIO()
    Image.fromarray(lut[labels]).save(buf, format="PNG", compress_level=1)  # RGB, as users upload them
    return buf.getvalue()
