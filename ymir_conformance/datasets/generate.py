"""Stream synthetic scenes: textured backgrounds with coloured objects of stable per-class colour."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..model import ObjectType
from .compose import ObjectPlan, ScenePainter
from .scene import ASSET_EXTS, Scene
from .shapes import Box, neighbour_box, random_box, star_polygon

EMPTY_SCENE_RATE = 0.05
MAX_OBJECTS = 6


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """Scene ``index`` depends only on (seed, index): a prefix of a longer run is the same scenes."""
    return np.random.Generator(np.random.PCG64([seed, index]))


def scene_name(prefix: str, index: int, ext: str) -> str:
    return f"{prefix}_{index:04d}" + ("" if ext == "unknown" else f".{ext}")


def _plan_objects(
    rng: np.random.Generator, width: int, height: int, n_classes: int, segmentation: bool
) -> list[ObjectPlan]:
    u_empty, u_count = rng.random(2).tolist()
    if n_classes == 0 or u_empty < EMPTY_SCENE_RATE:
        return []
    count = 1 + int(u_count * MAX_OBJECTS)
    plans: list[ObjectPlan] = []
    prev: Box | None = None
    for _ in range(count):
        roll, u_class, u_shape = rng.random(3).tolist()
        if prev is not None and segmentation and roll < 0.25:
            box = neighbour_box(rng, prev, width, height, touching=True)
        elif prev is not None and segmentation and roll < 0.45:
            box = neighbour_box(rng, prev, width, height, touching=False)
        else:
            box = random_box(rng, width, height, min_side=4)
        class_index = int(u_class * n_classes)
        if not segmentation:
            plans.append(ObjectPlan(class_index, box))
        else:
            shape = ("rect", "ellipse", "polygon")[int(u_shape * 3)]
            polygon = star_polygon(rng, box) if shape == "polygon" else None
            plans.append(ObjectPlan(class_index, box, shape, polygon))
        prev = box
    return plans


def generate_scenes(
    seed: int,
    count: int,
    object_type: ObjectType,
    class_names: Sequence[str],
    *,
    min_size: tuple[int, int] = (160, 120),
    max_size: tuple[int, int] = (480, 360),
    image_exts: Sequence[str] = ("jpg", "png"),
    name_prefix: str = "scene",
) -> Iterator[Scene]:
    """Yield ``count`` scenes, one at a time (memory stays flat in ``count``); same seed, same bytes.

    Sizes are (width, height), drawn uniformly between ``min_size`` and ``max_size``. Detection scenes
    hold filled rectangles; segmentation scenes hold rectangles, ellipses and polygons (some touching,
    some overlapping) with visible-pixel masks; semantic segmentation merges them into one object per class.
    Scene ``i`` depends only on ``(seed, i)``; one is rendered per ``next()``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    bad = [e for e in image_exts if e not in ASSET_EXTS]
    if bad or not image_exts:
        raise ValueError(f"image_exts must be a non-empty subset of {ASSET_EXTS}, got {tuple(image_exts)}")
    if not (1 <= min_size[0] <= max_size[0] and 1 <= min_size[1] <= max_size[1]):
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    painter = ScenePainter.for_seed(seed, object_type, class_names)
    exts = tuple(image_exts)

    def render(index: int) -> Scene:
        rng = scene_rng(seed, index)
        uw, uh, ue = rng.random(3).tolist()
        width = min_size[0] + int(uw * (max_size[0] - min_size[0] + 1))
        height = min_size[1] + int(uh * (max_size[1] - min_size[1] + 1))
        ext = exts[int(ue * len(exts))]
        plans = _plan_objects(rng, width, height, len(painter.class_names), object_type.is_segmentation)
        return painter.paint(scene_name(name_prefix, index, ext), (width, height), ext, plans, rng)

    yield from map(render, range(count))
