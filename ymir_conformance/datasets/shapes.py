"""Random object geometry: boxes of varied size and aspect, and mask shapes (ellipses, polygons, rectangles)."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .scene import BoolMask

Box = tuple[int, int, int, int]


def random_box(rng: np.random.Generator, width: int, height: int, *, min_side: int = 2) -> Box:
    """A box inside the image covering 1-20 % of it, aspect ratio between 1:3 and 3:1."""
    area_frac, log_aspect, fx, fy = rng.random(4)
    area = (0.01 + 0.19 * float(area_frac)) * width * height
    aspect = math.exp((float(log_aspect) * 2.0 - 1.0) * math.log(3.0))
    w = min(width, max(min(min_side, width), round(math.sqrt(area * aspect))))
    h = min(height, max(min(min_side, height), round(math.sqrt(area / aspect))))
    x = int(float(fx) * (width - w + 1))
    y = int(float(fy) * (height - h + 1))
    return (x, y, w, h)


def neighbour_box(rng: np.random.Generator, prev: Box, width: int, height: int, *, touching: bool) -> Box:
    """A box that touches ``prev`` (shares an edge: starts right after it) or overlaps it."""
    px, py, pw, ph = prev
    w, h = random_box(rng, width, height)[2:]
    if touching:
        x = px + pw if px + pw + w <= width else max(0, px - w)
        y = min(max(0, py + int(rng.integers(-h // 2, ph // 2 + 1))), height - h)
    else:
        x = min(max(0, px + pw // 2 - w // 3), width - w)
        y = min(max(0, py + ph // 2 - h // 3), height - h)
    return (x, y, w, h)


def star_polygon(rng: np.random.Generator, box: Box) -> list[float]:
    """A simple (star-shaped) polygon with 3-8 integer vertices inside ``box``; flat x1, y1, x2, y2..."""
    x, y, w, h = box
    k = int(rng.integers(3, 9))
    angles = np.sort(rng.random(k)) * 2.0 * math.pi
    radii = 0.55 + 0.45 * rng.random(k)
    cx, cy, rx, ry = x + (w - 1) / 2.0, y + (h - 1) / 2.0, (w - 1) / 2.0, (h - 1) / 2.0
    flat: list[float] = []
    for angle, radius in zip(angles.tolist(), radii.tolist()):
        flat.append(float(round(cx + rx * radius * math.cos(angle))))
        flat.append(float(round(cy + ry * radius * math.sin(angle))))
    return flat


def rect_polygon(box: Box) -> list[float]:
    x, y, w, h = box
    return [float(v) for v in (x, y, x + w - 1, y, x + w - 1, y + h - 1, x, y + h - 1)]


def rasterise(width: int, height: int, *, polygon: list[float] | None = None, ellipse: Box | None = None) -> BoolMask:
    """Pillow's rasterisation of one polygon or one ellipse (given by its box) as an H x W bool mask."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if polygon is not None:
        draw.polygon(polygon, fill=1)
    if ellipse is not None:
        x, y, w, h = ellipse
        draw.ellipse((x, y, x + w - 1, y + h - 1), fill=1)
    return np.asarray(canvas, dtype=np.bool_)


def mask_box(mask: BoolMask) -> Box | None:
    """Inclusive bounding box (x, y, w, h) of a mask; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
