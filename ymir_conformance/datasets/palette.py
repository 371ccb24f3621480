"""Stable per-class colours: class index i always gets the same hue, so colour statistics are learnable."""
from __future__ import annotations

import colorsys
from functools import lru_cache

_GOLDEN = 0.6180339887498949
MAX_CHANNEL = 223
"""Colours stay at or below this so that adding the uint8 noise tile (values < 256 - MAX_CHANNEL) never wraps."""


@lru_cache(maxsize=1024)
def class_colour(index: int) -> tuple[int, int, int]:
    """The base RGB colour of class ``index``: a fixed, well-separated hue at high saturation."""
    hue = (index * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.85)
    return (round(r * MAX_CHANNEL), round(g * MAX_CHANNEL), round(b * MAX_CHANNEL))
