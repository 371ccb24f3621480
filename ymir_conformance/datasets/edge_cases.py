"""Hand-picked awkward scenes for the certify profile, and a corrupt asset for negative tests."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..model import ObjectType
from .compose import ObjectPlan, ScenePainter
from .generate import scene_rng
from .scene import Scene
from .shapes import Box

EDGE_CLASS_NAMES: tuple[str, ...] = ("traffic light", "café", "行人", "a-b_c.d", "x")
"""Class names as the platform normalises them (lower-case, stripped) but with spaces and non-ASCII."""

LARGE_SIZE = (2000, 1500)
TINY_SIZE = (8, 8)
LARGE_BOXES: list[Box] = [(100, 80, 900, 600), (1200, 900, 800, 600), (1500, 10, 30, 20)]


def _plans(boxes: Sequence[Box], n_classes: int, shape: str = "rect") -> list[ObjectPlan]:
    return [ObjectPlan(i % n_classes, box, shape) for i, box in enumerate(boxes)]


def _border_boxes(width: int, height: int) -> list[Box]:
    w, h = width // 5, height // 5
    return [
        (0, height // 3, w, h),  # left edge
        (width - w, height // 3, w, h),  # right edge
        (width // 3, 0, w, h),  # top edge
        (width // 3, height - h, w, h),  # bottom edge
        (0, 0, w // 2, h // 2),  # top-left corner
        (width - w // 2, height - h // 2, w // 2, h // 2),  # bottom-right corner
    ]


def _crowded_boxes(width: int, height: int, step: int) -> list[Box]:
    side = step - 2
    return [(x, y, side, side) for y in range(0, height - step + 1, step) for x in range(0, width - step + 1, step)]


def edge_case_scenes(seed: int, object_type: ObjectType, class_names: Sequence[str]) -> list[Scene]:
    """One scene per awkward case; deterministic in ``seed``. Names start with ``edge_``.

    Covers: no objects; a one-pixel box; a full-image box; objects touching every border and corner;
    an 8x8 image; a 2000x1500 image; a densely crowded image; a BMP asset; an asset whose ext is
    ``unknown`` (PNG bytes, no extension in its name); every class present at least once.
    """
    painter = ScenePainter.for_seed(seed, object_type, class_names)
    n = len(painter.class_names)
    cases: list[tuple[str, tuple[int, int], str, list[ObjectPlan]]] = [
        ("edge_empty", (320, 240), "jpg", []),
    ]
    if n:
        step = 480 // n
        row: list[Box] = [(i * step, 30, max(1, step - 4), 60) for i in range(n)]
        cases += [
            ("edge_one_pixel", (320, 240), "png", _plans([(17, 23, 1, 1)], n)),
            ("edge_full_image", (320, 240), "png", _plans([(0, 0, 320, 240)], n)),
            ("edge_border", (320, 240), "jpg", _plans(_border_boxes(320, 240), n)),
            ("edge_tiny", TINY_SIZE, "png", _plans([(1, 1, 3, 3), (4, 4, 4, 4)], n)),
            ("edge_large", LARGE_SIZE, "jpg", _plans(LARGE_BOXES, n)),
            ("edge_crowded", (320, 240), "jpg", _plans(_crowded_boxes(320, 240, 32), n)),
            ("edge_bmp", (160, 120), "bmp", _plans([(10, 10, 60, 40)], n)),
            ("edge_unknown_ext", (160, 120), "unknown", _plans([(20, 30, 50, 50)], n)),
            ("edge_all_classes", (480, 120), "png", _plans(row, n)),
        ]
        if object_type.is_segmentation:
            cases.append(("edge_seg_shapes", (320, 240), "png", [
                ObjectPlan(0, (10, 10, 100, 80), "ellipse"),
                ObjectPlan(1 % n, (110, 10, 100, 80), "ellipse"),  # touches the first one's box
                ObjectPlan(2 % n, (60, 40, 100, 100), "polygon", [60.0, 40.0, 159.0, 60.0, 120.0, 139.0]),
            ]))
    return [
        painter.paint(stem if ext == "unknown" else f"{stem}.{ext}", size, ext, plans, scene_rng(seed, 1_000_000 + i))
        for i, (stem, size, ext, plans) in enumerate(cases)
    ]


def corrupt_scene(seed: int) -> Scene:
    """A JPEG asset cut off halfway (valid header, truncated data), with one labelled box."""
    painter = ScenePainter.for_seed(seed, ObjectType.DETECTION, ("corrupt",))
    plans = [ObjectPlan(0, (40, 30, 120, 90))]
    whole = painter.paint(f"corrupt_{seed}.jpg", (320, 240), "jpg", plans, scene_rng(seed, 2_000_000))
    return dataclasses.replace(whole, image_bytes=whole.image_bytes[: len(whole.image_bytes) // 2])
