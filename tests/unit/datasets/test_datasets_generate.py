"""Scene generation: determinism, geometry, per-class colours, masks, edge cases, streaming."""
from __future__ import annotations

import collections.abc
import io

import numpy as np
import pytest
from PIL import Image

from ymir_conformance.datasets import (
    EDGE_CLASS_NAMES,
    PROFILES,
    Scene,
    SceneObject,
    class_colour,
    corrupt_scene,
    edge_case_scenes,
    generate_scenes,
)
from ymir_conformance.model import ObjectType

NAMES = ("cat", "dog", "person")


def _fingerprint(scenes: list[Scene]) -> list[tuple[str, str, tuple[tuple[str, tuple[int, ...], bytes], ...]]]:
    return [
        (s.name, s.sha1, tuple((o.class_name, o.box, b"" if o.mask is None else o.mask.tobytes()) for o in s.objects))
        for s in scenes
    ]


@pytest.mark.parametrize("object_type", list(ObjectType), ids=lambda t: t.short)
def test_same_seed_same_bytes(object_type: ObjectType) -> None:
    first = list(generate_scenes(3, 6, object_type, NAMES, image_exts=("jpg", "png", "bmp", "unknown")))
    again = list(generate_scenes(3, 6, object_type, NAMES, image_exts=("jpg", "png", "bmp", "unknown")))
    assert _fingerprint(first) == _fingerprint(again)
    other = list(generate_scenes(4, 6, object_type, NAMES, image_exts=("jpg", "png", "bmp", "unknown")))
    assert {s.sha1 for s in first}.isdisjoint({s.sha1 for s in other})


def test_scene_depends_only_on_seed_and_index() -> None:
    short = list(generate_scenes(9, 3, ObjectType.DETECTION, NAMES))
    long = list(generate_scenes(9, 10, ObjectType.DETECTION, NAMES))
    assert _fingerprint(short) == _fingerprint(long[:3])


def test_generator_streams() -> None:
    scenes = generate_scenes(1, 10**9, ObjectType.DETECTION, NAMES)  # in-process or by workers: a stream either way
    assert isinstance(scenes, collections.abc.Iterator)
    assert next(scenes).name.startswith("scene_0000.")
    assert next(scenes).name.startswith("scene_0001.")


def test_images_decode_to_declared_size_and_ext(det_scenes: list[Scene]) -> None:
    pil = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}
    for scene in det_scenes:
        with Image.open(io.BytesIO(scene.image_bytes)) as image:
            assert image.size == (scene.width, scene.height)
            assert image.format == pil[scene.ext]
            assert image.mode == "RGB"
        assert 160 <= scene.width <= 480 and 120 <= scene.height <= 360
        assert scene.name.endswith("." + scene.ext)
        assert scene.asset_relpath == f"{scene.sha1[-2:]}/{scene.sha1}.{scene.ext}"


def test_fixed_size_and_varied_aspect() -> None:
    scenes = list(generate_scenes(2, 30, ObjectType.DETECTION, NAMES, min_size=(320, 240), max_size=(320, 240)))
    assert {(s.width, s.height) for s in scenes} == {(320, 240)}
    ratios = [o.box[2] / o.box[3] for s in scenes for o in s.objects]
    assert min(ratios) < 0.7 and max(ratios) > 1.4
    assert len({o.class_name for s in scenes for o in s.objects}) == len(NAMES)


def test_boxes_inside_image(det_scenes: list[Scene], inst_scenes: list[Scene]) -> None:
    for scene in det_scenes + inst_scenes:
        for obj in scene.objects:
            assert obj.xmax < scene.width and obj.ymax < scene.height


def test_class_colours_are_distinct_and_learnable() -> None:
    colours = [np.asarray(class_colour(i), dtype=float) for i in range(8)]
    for i in range(len(colours)):
        for j in range(i):
            assert np.abs(colours[i] - colours[j]).sum() > 60
    scenes = list(generate_scenes(5, 40, ObjectType.DETECTION, NAMES, image_exts=("png",)))
    for scene in scenes:
        pixels = np.asarray(Image.open(io.BytesIO(scene.image_bytes)), dtype=float)
        for k, obj in enumerate(scene.objects):
            later = scene.objects[k + 1 :]
            if any(_overlap(obj, other) for other in later):
                continue  # partly painted over
            x, y, w, h = obj.box
            mean = pixels[y : y + h, x : x + w].reshape(-1, 3).mean(axis=0)
            expected = np.asarray(class_colour(NAMES.index(obj.class_name)), dtype=float)
            assert np.abs(mean - expected).max() < 12 + 32, (scene.name, obj)


def _overlap(a: SceneObject, b: SceneObject) -> bool:
    return not (a.xmax < b.box[0] or b.xmax < a.box[0] or a.ymax < b.box[1] or b.ymax < a.box[1])


def test_instance_masks_are_visible_pixels(inst_scenes: list[Scene]) -> None:
    touching = overlapping = polygons = rle_only = 0
    for scene in inst_scenes:
        union = np.zeros((scene.height, scene.width), dtype=np.int32)
        for obj in scene.objects:
            assert obj.mask is not None and obj.mask.shape == (scene.height, scene.width)
            ys, xs = np.nonzero(obj.mask)
            assert (xs.min(), ys.min(), xs.max(), ys.max()) == (obj.box[0], obj.box[1], obj.xmax, obj.ymax)
            union += obj.mask
            polygons += obj.polygon is not None
            rle_only += obj.polygon is None
        assert union.max() <= 1  # visible masks never overlap
        for i, a in enumerate(scene.objects):
            for b in scene.objects[i + 1 :]:
                assert a.mask is not None and b.mask is not None
                grown = np.zeros_like(a.mask)
                grown[:, 1:] |= a.mask[:, :-1]
                grown[:, :-1] |= a.mask[:, 1:]
                grown[1:] |= a.mask[:-1]
                grown[:-1] |= a.mask[1:]
                touching += bool((grown & b.mask).any())
                overlapping += _overlap(a, b)
    assert touching and overlapping and polygons and rle_only


def test_semantic_scenes_have_one_object_per_class(sem_scenes: list[Scene]) -> None:
    for scene in sem_scenes:
        names = [o.class_name for o in scene.objects]
        assert len(names) == len(set(names))
        assert all(o.mask is not None and o.polygon is None for o in scene.objects)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        list(generate_scenes(1, 1, ObjectType.DETECTION, NAMES, image_exts=("gif",)))
    with pytest.raises(ValueError):
        list(generate_scenes(1, 1, ObjectType.DETECTION, NAMES, min_size=(10, 10), max_size=(5, 5)))
    assert list(generate_scenes(1, 3, ObjectType.DETECTION, ())) and all(
        not s.objects for s in generate_scenes(1, 3, ObjectType.DETECTION, ())
    )


def test_scenes_are_hashable_values(inst_scenes: list[Scene]) -> None:
    assert len(set(inst_scenes)) == len(inst_scenes)
    assert any(o.polygon is not None for s in inst_scenes for o in s.objects)
    obj = SceneObject("cat", (1, 2, 3, 4), polygon=[1.0, 2.0, 3.0, 2.0, 3.0, 5.0])
    assert obj == SceneObject("cat", (1, 2, 3, 4), polygon=[1.0, 2.0, 3.0, 2.0, 3.0, 5.0]) and hash(obj)
    assert (obj.xmax, obj.ymax, obj.area) == (3, 5, 0)


def test_scene_object_rejects_empty_box() -> None:
    with pytest.raises(ValueError):
        SceneObject("cat", (0, 0, 0, 3))
    with pytest.raises(ValueError):
        Scene("x.gif", b"", "gif", 1, 1)


@pytest.mark.parametrize("object_type", [ObjectType.DETECTION, ObjectType.INSTANCE_SEGMENTATION], ids=str)
def test_edge_cases_cover_the_awkward_cases(object_type: ObjectType) -> None:
    scenes = edge_case_scenes(1, object_type, EDGE_CLASS_NAMES)
    assert _fingerprint(scenes) == _fingerprint(edge_case_scenes(1, object_type, EDGE_CLASS_NAMES))
    by_name = {s.name.split(".")[0]: s for s in scenes}
    assert not by_name["edge_empty"].objects
    assert by_name["edge_one_pixel"].objects[0].box[2:] == (1, 1)
    full = by_name["edge_full_image"]
    assert full.objects[0].box == (0, 0, full.width, full.height)
    border = by_name["edge_border"]
    assert any(o.box[0] == 0 for o in border.objects) and any(o.xmax == border.width - 1 for o in border.objects)
    assert any(o.ymax == border.height - 1 for o in border.objects) and any(o.box[1] == 0 for o in border.objects)
    assert (by_name["edge_tiny"].width, by_name["edge_tiny"].height) == (8, 8)
    assert (by_name["edge_large"].width, by_name["edge_large"].height) == (2000, 1500)
    unknown = by_name["edge_unknown_ext"]
    assert unknown.ext == "unknown" and unknown.name == "edge_unknown_ext"
    assert unknown.asset_relpath.endswith(".unknown")
    assert {o.class_name for s in scenes for o in s.objects} == set(EDGE_CLASS_NAMES)
    assert len({s.sha1 for s in scenes}) == len(scenes)
    for scene in scenes:
        with Image.open(io.BytesIO(scene.image_bytes)) as image:
            image.load()
            assert image.size == (scene.width, scene.height)


def test_corrupt_scene_is_a_truncated_jpeg() -> None:
    scene = corrupt_scene(3)
    assert scene.ext == "jpg" and scene.image_bytes[:2] == b"\xff\xd8"
    assert scene.image_bytes == corrupt_scene(3).image_bytes
    with pytest.raises(OSError):
        with Image.open(io.BytesIO(scene.image_bytes)) as image:
            image.load()


def test_profiles() -> None:
    assert set(PROFILES) == {"quick", "standard", "certify"}
    assert PROFILES["quick"].total < PROFILES["standard"].total
    assert PROFILES["certify"].edge_cases and not PROFILES["standard"].edge_cases
    assert (PROFILES["standard"].train, PROFILES["standard"].val) == (200, 50)
