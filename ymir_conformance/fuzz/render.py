"""A :class:`FuzzCase` as the dataset's scenes (asset bytes with Pillow) and as a workspace; deterministic.

The same case gives byte-identical files (for one Pillow build): the pixels come from a numpy generator seeded
with the image's own fields, and every encoder runs with fixed options. A workspace *recipe* (``case.json`` of
a reproducer) holds everything else :func:`build_workspace` needs, so ``python -m ymir_conformance workspace DIR
--fuzz-case case.json`` rebuilds the failing ``/in`` byte for byte (:func:`in_digest` compares two).
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import guard
from ..datasets.palette import class_colour
from ..datasets.scene import Scene, SceneObject
from ..datasets.shapes import mask_box
from ..model import ObjectType, Task, TaskShape
from ..platform import Release
from ..workspace import DatasetSpec, Workspace, build_mining_infer, build_training, load_package
from .case import CANDIDATES, FuzzCase, FuzzImage

JPEG_QUALITY = 90
EXIF_ORIENTATION = 0x0112
RECIPE_VERSION = 1


def _pixels(img: FuzzImage, class_names: tuple[str, ...]) -> np.ndarray:
    """H x W x 3 uint8: a noisy background and each box filled with its class's colour (clipped to the image)."""
    rng = np.random.default_rng([img.seed, img.width, img.height, 0xF022])
    base = rng.integers(40, 180, size=3)
    arr = np.empty((img.height, img.width, 3), dtype=np.uint8)
    arr[...] = base.astype(np.uint8)
    arr += rng.integers(0, 24, size=(img.height, img.width, 3), dtype=np.uint8)
    for b in img.boxes:
        if class_names:
            arr[b.y:min(b.y + b.h, img.height), b.x:min(b.x + b.w, img.width)] = class_colour(b.cls % len(class_names))
    return arr


def _convert(rgb: Image.Image, mode: str, seed: int) -> Image.Image:
    if mode == "RGB":
        return rgb
    if mode in ("L", "CMYK"):
        return rgb.convert(mode)
    if mode == "P":
        return rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    if mode == "I;16":
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257  # the full 16-bit range
        return Image.frombytes("I;16", rgb.size, grey.astype("<u2").tobytes())
    alpha = Image.fromarray(np.random.default_rng([seed, 0xA1FA]).integers(
        128, 256, size=(rgb.height, rgb.width), dtype=np.uint8), "L")
    if mode == "RGBA":
        out = rgb.convert("RGBA")
    elif mode == "LA":
        out = rgb.convert("LA")
    else:
        raise ValueError(f"mode {mode!r} is not one the fuzzer draws")
    out.putalpha(alpha)
    return out


def encode(img: FuzzImage, class_names: tuple[str, ...]) -> bytes:
    """The asset bytes of one image: its pixels in its mode, encoded as its format with fixed options."""
    pic = _convert(Image.fromarray(_pixels(img, class_names), "RGB"), img.mode, img.seed)
    buf = io.BytesIO()
    if img.fmt == "jpg":
        extra: dict[str, Any] = {}
        if img.orientation:
            exif = Image.Exif()
            exif[EXIF_ORIENTATION] = img.orientation
            extra["exif"] = exif.tobytes()
        pic.save(buf, format="JPEG", quality=JPEG_QUALITY, progressive=img.progressive, **extra)
    elif img.fmt == "png":
        pic.save(buf, format="PNG", compress_level=1)
    elif img.fmt == "bmp":
        pic.save(buf, format="BMP")
    else:
        raise ValueError(f"format {img.fmt!r} is not one the fuzzer draws")
    return buf.getvalue()


def scene(img: FuzzImage, class_names: tuple[str, ...], name: str, object_type: ObjectType) -> Scene:
    """One image as the exporters take it: bytes, stored size (before any EXIF rotation, as the platform keeps
    it), channels as PIL reports them (VOC <depth>), and its boxes as ground truth. Segmentation objects get the
    box's visible rectangle as their mask (boxes are clipped to the image there)."""
    data = encode(img, class_names)
    with Image.open(io.BytesIO(data)) as opened:
        channels = len(opened.getbands())
    objects: list[SceneObject] = []
    for b in img.boxes:
        if not class_names:
            continue
        label = class_names[b.cls % len(class_names)]
        if object_type.is_segmentation:
            mask = np.zeros((img.height, img.width), dtype=np.bool_)
            mask[b.y:b.y + b.h, b.x:b.x + b.w] = True
            box = mask_box(mask)
            if box is not None:
                objects.append(SceneObject(label, box, mask))
        else:
            objects.append(SceneObject(label, (b.x, b.y, b.w, b.h)))
    return Scene(name=name, image_bytes=data, ext=img.fmt, width=img.width, height=img.height,
                 objects=tuple(objects), channels=channels)


def scenes(case: FuzzCase, object_type: ObjectType) -> tuple[list[Scene], list[Scene]]:
    """(train or candidate scenes, validation scenes)."""
    first = [scene(i, case.class_names, f"fuzz_{n:02d}.{i.fmt}", object_type) for n, i in enumerate(case.images)]
    val = [scene(i, case.class_names, f"fuzz_val_{n:02d}.{i.fmt}", object_type) for n, i in enumerate(case.val)]
    return first, val


def build_workspace(root: Path, recipe: dict[str, Any], model_dir: Path | None = None) -> Workspace:
    """The workspace of one fuzz input from its recipe (what ``case.json`` holds): the case, the run's kind,
    object type, release, export format, templates (as the user edited them), label and seed."""
    if int(recipe.get("version", 0)) != RECIPE_VERSION:
        raise ValueError(f"fuzz recipe version {recipe.get('version')!r} is not {RECIPE_VERSION}")
    case = FuzzCase.from_json(recipe["case"])
    ot = ObjectType(int(recipe["object_type"]))
    release = Release.parse(str(recipe["release"]))
    templates = {Task(k): dict(v) for k, v in recipe["templates"].items()}
    gpu_ids = tuple(recipe.get("gpu_ids", ()))
    first, val = scenes(case, ot)
    if case.search == CANDIDATES:
        pkg = load_package(model_dir or Path(recipe["model"]))
        if pkg is None:
            raise ValueError(f"no model package written by ymir-conformance at {model_dir or recipe['model']}")
        data = DatasetSpec(seed=int(recipe["seed"]), class_names=tuple(pkg.class_names))
        tasks = [Task(t) for t in recipe["tasks"]]
        return build_mining_infer(root, shape=TaskShape.of(*tasks), templates=templates, object_type=ot, model=pkg,
                                  stage=str(recipe["stage"]), data=data, release=release, gpu_ids=gpu_ids,
                                  label=str(recipe["label"]), candidate_scenes=first)
    data = DatasetSpec(seed=int(recipe["seed"]), class_names=case.class_names)
    return build_training(root, template=templates.get(Task.TRAINING, {}), object_type=ot,
                          export_format=str(recipe["export_format"]), data=data, release=release, gpu_ids=gpu_ids,
                          label=str(recipe["label"]), scenes=(first, val))


def in_digest(in_dir: Path) -> str:
    """A digest of every file under ``in_dir`` by relative path and content, entering the ``assets`` link (the
    platform's asset cache) as the container sees it. The host paths in ``candidate-src-index.tsv`` (mir's own
    work index, naming the workspace's folder) are compared with that folder's path taken out."""
    h = hashlib.sha256()
    base = in_dir.resolve().parent
    for dirpath, dirnames, filenames in os.walk(in_dir, followlinks=False):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, in_dir)
        entries = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        for name in entries:
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(path) and os.path.isdir(path):  # /in/assets -> the asset cache, which the image
                # can write: read through the guarded door (no link followed, regular files only, capped)
                cache = Path(os.path.realpath(path))  # the link is the suite's own
                for sub, st in sorted(guard.walk(cache)):
                    if stat.S_ISREG(st.st_mode):
                        h.update(f"{rel}/{sub}\0".encode())
                        h.update(guard.read_bytes(cache, sub, guard.CAPS["asset"]))
                continue
            data = Path(path).read_bytes()
            if name == "candidate-src-index.tsv":
                data = data.replace(str(base).encode(), b"<workspace>")
            h.update(f"{rel}\0".encode())
            h.update(data)
    return h.hexdigest()


__all__ = ["build_workspace", "encode", "in_digest", "scene", "scenes"]
