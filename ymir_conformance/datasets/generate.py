"""Stream synthetic scenes: textured backgrounds with coloured objects of stable per-class colour."""
from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

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


PARALLEL_MIN = 256  # scenes below which rendering stays in this process (pool start-up would cost more)
CHUNK = 32  # scenes per worker task
MAX_WORKERS = 4


def default_workers(count: int) -> int:
    """Worker processes for ``count`` scenes: none for small sets, else one per core (at most MAX_WORKERS).
    ``YMIR_DATASET_WORKERS`` overrides (0: always in-process)."""
    env = os.environ.get("YMIR_DATASET_WORKERS", "").strip()
    if env.isdigit():
        return int(env)
    if count < PARALLEL_MIN or threading.active_count() > 1:
        return 0  # small sets; and never fork a process that runs other threads (the suite's runner, the
        # scheduler): a lock held by another thread at fork time stays held in the child forever
    return min(MAX_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass(frozen=True)
class _Recipe:
    """Everything that fixes the scenes of one ``generate_scenes`` call (sent to worker processes)."""

    seed: int
    object_type: ObjectType
    class_names: tuple[str, ...]
    min_size: tuple[int, int]
    max_size: tuple[int, int]
    exts: tuple[str, ...]
    name_prefix: str


def _renderer(recipe: _Recipe) -> Callable[[int], Scene]:
    painter = ScenePainter.for_seed(recipe.seed, recipe.object_type, recipe.class_names)
    min_size, max_size, exts = recipe.min_size, recipe.max_size, recipe.exts
    segmentation = recipe.object_type.is_segmentation

    def render(index: int) -> Scene:
        rng = scene_rng(recipe.seed, index)
        uw, uh, ue = rng.random(3).tolist()
        width = min_size[0] + int(uw * (max_size[0] - min_size[0] + 1))
        height = min_size[1] + int(uh * (max_size[1] - min_size[1] + 1))
        ext = exts[int(ue * len(exts))]
        plans = _plan_objects(rng, width, height, len(painter.class_names), segmentation)
        return painter.paint(scene_name(recipe.name_prefix, index, ext), (width, height), ext, plans, rng)

    return render


_WORKER_RENDERERS: dict[_Recipe, Callable[[int], Scene]] = {}


def _render_chunk(recipe: _Recipe, start: int, stop: int) -> list[Scene]:
    """In a worker process: scenes ``start``..``stop - 1`` (their sha1 computed here too)."""
    render = _WORKER_RENDERERS.get(recipe)
    if render is None:
        _WORKER_RENDERERS.clear()
        render = _WORKER_RENDERERS[recipe] = _renderer(recipe)
    scenes = [render(i) for i in range(start, stop)]
    for scene in scenes:
        scene.sha1  # noqa: B018 - cached on the scene, so pickled with it
    return scenes


def _parallel(recipe: _Recipe, count: int, workers: int) -> Iterator[Scene]:
    """Scenes 0..count-1 in order, rendered by ``workers`` forked processes, at most 2 chunks per worker ahead
    (segmentation scenes carry full-size masks: smaller chunks). A worker that dies raises BrokenProcessPool.

    Scene ``i`` depends only on ``(seed, i)``, so which process renders it changes nothing in its bytes."""
    chunk = CHUNK if not recipe.object_type.is_segmentation else CHUNK // 4
    pending: deque[Future[list[Scene]]] = deque()
    starts = iter(range(0, count, chunk))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        try:
            for start in itertools.islice(starts, 2 * workers):
                pending.append(pool.submit(_render_chunk, recipe, start, min(count, start + chunk)))
            while pending:
                scenes = pending.popleft().result()
                nxt = next(starts, None)
                if nxt is not None:
                    pending.append(pool.submit(_render_chunk, recipe, nxt, min(count, nxt + chunk)))
                yield from scenes
        finally:  # a consumer that stops early: drop the work not started
            for fut in pending:
                fut.cancel()


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
    workers: int | None = None,
) -> Iterator[Scene]:
    """Yield ``count`` scenes, one at a time (memory stays flat in ``count``); same seed, same bytes.

    Sizes are (width, height), drawn uniformly between ``min_size`` and ``max_size``. Detection scenes
    hold filled rectangles; segmentation scenes hold rectangles, ellipses and polygons (some touching,
    some overlapping) with visible-pixel masks; semantic segmentation merges them into one object per class.
    Scene ``i`` depends only on ``(seed, i)``. ``workers``: processes rendering ahead in chunks (default
    :func:`default_workers`: none below PARALLEL_MIN scenes); 0 renders one scene per ``next()`` in this process.
    The scenes and their order are the same either way.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    bad = [e for e in image_exts if e not in ASSET_EXTS]
    if bad or not image_exts:
        raise ValueError(f"image_exts must be a non-empty subset of {ASSET_EXTS}, got {tuple(image_exts)}")
    if not (1 <= min_size[0] <= max_size[0] and 1 <= min_size[1] <= max_size[1]):
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    recipe = _Recipe(seed, object_type, tuple(class_names), tuple(min_size), tuple(max_size),  # type: ignore[arg-type]
                     tuple(image_exts), name_prefix)
    n_workers = default_workers(count) if workers is None else workers
    if n_workers > 0 and count > CHUNK:
        return _parallel(recipe, count, n_workers)
    return map(_renderer(recipe), range(count))
