"""Paint planned objects onto a textured background and turn the result into a Scene."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..model import ObjectType
from .encode import encode_image
from .palette import MAX_CHANNEL, class_colour
from .scene import BoolMask, Scene, SceneObject
from .shapes import Box, mask_box, rasterise, rect_polygon
from .texture import noise_patch, noise_tile, pack

COLOUR_JITTER = 12


@dataclass(frozen=True)
class ObjectPlan:
    """What to paint: a class (by index into class_names), where, and which shape."""

    class_index: int
    box: Box
    shape: str = "rect"  # rect | ellipse | polygon
    polygon: list[float] | None = None  # for shape == "polygon"


def _clamp(value: int) -> int:
    return min(MAX_CHANNEL, max(0, value))


def background_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A dull, low-saturation colour, far from the saturated class hues."""
    ug, ur, ugg, ub = rng.random(4).tolist()
    grey = 50 + int(ug * 120)
    return (_clamp(grey + int(ur * 21) - 10), _clamp(grey + int(ugg * 21) - 10), _clamp(grey + int(ub * 21) - 10))


def object_colour(rng: np.random.Generator, class_index: int) -> tuple[int, int, int]:
    """The class's base colour with a small per-object jitter on each channel."""
    r, g, b = class_colour(class_index)
    span = 2 * COLOUR_JITTER + 1
    jr, jg, jb = (int(u * span) - COLOUR_JITTER for u in rng.random(3).tolist())
    return (_clamp(r + jr), _clamp(g + jg), _clamp(b + jb))


def _shape_mask(plan: ObjectPlan, width: int, height: int) -> tuple[BoolMask, list[float] | None]:
    if plan.shape == "ellipse":
        return rasterise(width, height, ellipse=plan.box), None
    polygon = plan.polygon if plan.shape == "polygon" and plan.polygon is not None else rect_polygon(plan.box)
    return rasterise(width, height, polygon=polygon), polygon


def _segmentation_objects(
    layer: npt.NDArray[np.uint32],
    plans: Sequence[ObjectPlan],
    colours: Sequence[tuple[int, int, int]],
    class_names: Sequence[str],
    semantic: bool,
) -> tuple[SceneObject, ...]:
    height, width = layer.shape[:2]
    shapes = [_shape_mask(plan, width, height) for plan in plans]
    for (mask, _), colour in zip(shapes, colours):
        layer[mask] = pack(colour)
    covered = np.zeros((height, width), dtype=np.bool_)
    visible: list[tuple[int, BoolMask, list[float] | None]] = []
    for plan, (mask, polygon) in zip(reversed(plans), reversed(shapes)):  # later objects lie on top
        own = mask & ~covered
        covered |= mask
        occluded = bool((mask & ~own).any())
        visible.append((plan.class_index, own, None if occluded else polygon))
    visible.reverse()
    if semantic:
        merged: dict[int, BoolMask] = {}
        for class_index, own, _ in visible:
            merged[class_index] = merged[class_index] | own if class_index in merged else own.copy()
        visible = [(ci, merged[ci], None) for ci in sorted(merged)]
    objects: list[SceneObject] = []
    for class_index, own, polygon in visible:
        box = mask_box(own)
        if box is None:
            continue
        objects.append(SceneObject(class_names[class_index], box, own, polygon))
    return tuple(objects)


def compose_scene(
    *,
    name: str,
    width: int,
    height: int,
    ext: str,
    plans: Sequence[ObjectPlan],
    class_names: Sequence[str],
    object_type: ObjectType,
    rng: np.random.Generator,
    tile: npt.NDArray[np.uint32],
) -> Scene:
    """Paint ``plans`` in order (later on top) and encode; ext 'unknown' stores PNG bytes."""
    layer = np.empty((height, width), dtype=np.uint32)
    layer.fill(pack(background_colour(rng)))
    colours = [object_colour(rng, plan.class_index) for plan in plans]
    if object_type.is_segmentation:
        semantic = object_type == ObjectType.SEMANTIC_SEGMENTATION
        objects = _segmentation_objects(layer, plans, colours, class_names, semantic)
    else:
        for plan, colour in zip(plans, colours):
            x, y, w, h = plan.box
            layer[y : y + h, x : x + w] = pack(colour)
        objects = tuple(SceneObject(class_names[p.class_index], p.box) for p in plans)
    pixels = np.add(layer, noise_patch(tile, rng, height, width))
    image_bytes = encode_image(pixels, "png" if ext == "unknown" else ext)
    return Scene(name=name, image_bytes=image_bytes, ext=ext, width=width, height=height, objects=objects)


@dataclass(frozen=True, eq=False)
class ScenePainter:
    """``compose_scene`` for one task type and class list, on one seed's background noise tile."""

    object_type: ObjectType
    class_names: tuple[str, ...]
    tile: npt.NDArray[np.uint32]

    @classmethod
    def for_seed(cls, seed: int, object_type: ObjectType, class_names: Sequence[str]) -> ScenePainter:
        return cls(object_type, tuple(class_names), noise_tile(seed))

    def paint(
        self, name: str, size: tuple[int, int], ext: str, plans: Sequence[ObjectPlan], rng: np.random.Generator
    ) -> Scene:
        """Scene ``name`` of ``size`` (width, height), encoded as ``ext``, drawing its colours from ``rng``."""
        width, height = size
        return compose_scene(
            name=name,
            width=width,
            height=height,
            ext=ext,
            plans=plans,
            class_names=self.class_names,
            object_type=self.object_type,
            rng=rng,
            tile=self.tile,
        )
