"""Every exporter's output, read back with an independent reader, gives the scenes' ground truth."""
from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from ymir_conformance.datasets import Scene, SceneObject, class_colour, export_training_set
from ymir_conformance.datasets.strategies import class_names as st_class_names
from ymir_conformance.datasets.strategies import detection_scenes
from ymir_conformance.datasets.writers.ark import render_ark
from ymir_conformance.datasets.writers.voc import render_voc
from ymir_conformance.platform import Release

# pycocotools 2.0.x decode() under numpy 2 warns about __array__(copy=...); not our code, and harmless
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

HostPath = Callable[[Path, str], Path]
Truth = list[tuple[int, tuple[int, int, int, int]]]


def _truth(scene: Scene, names: tuple[str, ...] | list[str]) -> Truth:
    return [(names.index(o.class_name), o.box) for o in scene.objects if o.class_name in names]


def _pairs(in_dir: Path, split: str) -> list[tuple[str, str]]:
    text = (in_dir / f"{split}-index.tsv").read_text(encoding="utf-8")
    return [tuple(line.split("\t")) for line in text.splitlines()]  # type: ignore[misc]


def _by_sha1(scenes: list[Scene]) -> dict[str, Scene]:
    return {s.sha1: s for s in scenes}


def _sha1_of(container_path: str) -> str:
    return container_path.rsplit("/", 1)[1].split(".")[0]


def read_ark(text: str) -> Truth:
    out: Truth = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split(",")]
        assert len(cols) in (5, 7), line
        cid, x0, y0, x1, y1 = (int(c) for c in cols[:5])
        if len(cols) == 7:
            assert (float(cols[5]), float(cols[6])) == (-1.0, 0.0)
        out.append((cid, (x0, y0, x1 - x0 + 1, y1 - y0 + 1)))
    return out


def read_voc(text: str, names: tuple[str, ...] | list[str]) -> tuple[str, tuple[int, int, int], Truth]:
    root = ET.fromstring(text)
    size = root.find("size")
    assert size is not None
    dims = tuple(int(size.findtext(k) or "-1") for k in ("width", "height", "depth"))
    objects: Truth = []
    for node in root.iter("object"):
        bb = node.find("bndbox")
        assert bb is not None
        x0, y0, x1, y1 = (int(bb.findtext(k) or "-1") for k in ("xmin", "ymin", "xmax", "ymax"))
        objects.append((names.index(node.findtext("name") or ""), (x0, y0, x1 - x0 + 1, y1 - y0 + 1)))
    return root.findtext("filename") or "", dims, objects  # type: ignore[return-value]


# ---------------------------------------------------------------- per-image formats, files on disk


@pytest.mark.parametrize("fmt", ["ark", "det-ark", "voc", "det-voc", "ls_json", "det-ls-json"])
def test_per_image_formats_round_trip(
    tmp_path: Path, det_scenes: list[Scene], class_names: tuple[str, ...], host_path: HostPath, fmt: str
) -> None:
    release = Release(2, 4)
    train, val, test = det_scenes[:6], det_scenes[6:10], det_scenes[10:]
    summary = export_training_set(
        tmp_path, train=train, val=val, test=test, class_names=class_names, export_format=f"{fmt}:raw", release=release
    )
    assert summary.images == {"train": 6, "val": 4, "test": 2}
    assert summary.objects == sum(len(s.objects) for s in det_scenes)
    scenes = _by_sha1(det_scenes)
    seen = 0
    for split, expected in (("train", train), ("val", val), ("test", test)):
        pairs = _pairs(tmp_path, split)
        assert [_sha1_of(a) for a, _ in pairs] == [s.sha1 for s in expected]
        for asset, anno in pairs:
            scene = scenes[_sha1_of(asset)]
            assert asset == f"/in/assets/{scene.asset_relpath}"
            assert host_path(tmp_path, asset).read_bytes() == scene.image_bytes
            text = host_path(tmp_path, anno).read_text(encoding="utf-8")
            truth = _truth(scene, class_names)
            if fmt.endswith("ark"):
                assert anno.endswith(".txt") and read_ark(text) == truth
                assert text == "" or text.endswith("\n")
            elif fmt.endswith("voc"):
                filename, dims, objects = read_voc(text, class_names)
                assert anno.endswith(".xml") and "\n" not in text and not text.startswith("<?xml")
                assert (filename, dims, objects) == (asset, (scene.width, scene.height, 3), truth)
            else:
                assert anno.endswith(".json")
                task = json.loads(text)
                assert task["data"]["image"] == asset
                results = task["predictions"][0]["result"]
                got = []
                for r in results:
                    v = r["value"]
                    assert (r["original_width"], r["original_height"]) == (scene.width, scene.height)
                    box = (
                        round(v["x"] * scene.width / 100),
                        round(v["y"] * scene.height / 100),
                        round(v["width"] * scene.width / 100),
                        round(v["height"] * scene.height / 100),
                    )
                    got.append((class_names.index(v["rectanglelabels"][0]), box))
                assert got == truth
            seen += 1
    assert seen == len(det_scenes)
    gt = (tmp_path / "idx-gt.tsv").read_text().splitlines()
    assert len(gt) == len(det_scenes)
    assert (tmp_path / "idx-assets.tsv").read_text().splitlines() == [line.split("\t")[0] for line in gt]
    # the platform's predictions pass: every asset again, under /in/predictions, with no objects
    pred = (tmp_path / "idx-pred.tsv").read_text().splitlines()
    assert [line.replace("/in/predictions/", "/in/annotations/") for line in pred] == gt
    for name in ("train", "val", "test"):
        gt_split = (tmp_path / f"{name}-index.tsv").read_text().replace("/in/annotations/", "/in/predictions/")
        assert (tmp_path / f"pred-{name}-index.tsv").read_text() == gt_split
    for line in pred:
        text = host_path(tmp_path, line.split("\t")[1]).read_text()
        if line.endswith(".txt"):
            assert text == ""
        elif line.endswith(".xml"):
            assert "<object>" not in text and "<image_quality>0.0000</image_quality>" in text
        else:
            assert json.loads(text)["predictions"][0]["result"] == []


def test_objects_of_other_classes_are_dropped_and_ids_follow_class_names(
    tmp_path: Path, det_scenes: list[Scene], host_path: HostPath
) -> None:
    names = ("person", "cat")  # 'dog' not a target class; order differs from generation
    export_training_set(tmp_path, train=det_scenes, val=[], class_names=names, export_format="ark:raw")
    for asset, anno in _pairs(tmp_path, "train"):
        scene = _by_sha1(det_scenes)[_sha1_of(asset)]
        assert read_ark(host_path(tmp_path, anno).read_text()) == _truth(scene, names)


# ---------------------------------------------------------------- COCO


def _load_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


@pytest.mark.parametrize("fmt", ["seg-coco", "coco"])
@pytest.mark.parametrize("kind", ["inst", "sem", "det"])
def test_coco_round_trip(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    class_names: tuple[str, ...],
    host_path: HostPath,
    fmt: str,
    kind: str,
) -> None:
    scenes: list[Scene] = request.getfixturevalue(f"{kind}_scenes")
    train, val = scenes[: len(scenes) // 2], scenes[len(scenes) // 2 :]
    export_training_set(tmp_path, train=train, val=val, class_names=class_names, export_format=f"{fmt}:raw")
    coco_path = tmp_path / "annotations" / "coco-annotations.json"
    assert sorted(p.name for p in (tmp_path / "annotations").iterdir()) == ["coco-annotations.json"]
    for split in ("train", "val"):
        for asset, anno in _pairs(tmp_path, split):
            assert anno == "/in/annotations/coco-annotations.json"
            assert host_path(tmp_path, asset).is_file()
    raw = json.loads(coco_path.read_text())
    assert json.dumps(raw) == coco_path.read_text()  # the platform writes json.dumps(coco_dict)
    assert set(raw) == {"images", "licenses", "categories", "annotations"}
    assert raw["licenses"] == [{"id": 1, "name": "", "url": ""}]
    assert [i["file_name"] for i in raw["images"]] == sorted(f"{s.sha1}.{s.ext}" for s in scenes)
    assert [i["id"] for i in raw["images"]] == list(range(1, len(scenes) + 1))
    assert [a["id"] for a in raw["annotations"]] == list(range(1, len(raw["annotations"]) + 1))
    # only the classes present, listed by label id (default label store: names sorted), ids = class_names index
    used = sorted({o.class_name for s in scenes for o in s.objects})
    assert raw["categories"] == [{"id": class_names.index(n), "name": n, "supercategory": "object"} for n in used]

    coco = _load_coco(coco_path)
    by_sha1 = _by_sha1(scenes)
    n_rle = n_poly = 0
    for image in coco.dataset["images"]:
        scene = by_sha1[image["file_name"].split(".")[0]]
        assert (image["width"], image["height"]) == (scene.width, scene.height)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert len(anns) == len(scene.objects)
        for ann, obj in zip(anns, scene.objects):
            assert class_names[ann["category_id"]] == obj.class_name
            assert ann["bbox"] == list(obj.box) and all(isinstance(v, int) for v in ann["bbox"])
            assert ann["confidence"] == -1.0
            seg = ann["segmentation"]
            if obj.mask is None:
                assert seg == {} and ann["area"] == 0 and ann["iscrowd"] == 0
            elif obj.polygon is not None:
                n_poly += 1
                assert seg == [[int(v) for v in obj.polygon]] and ann["iscrowd"] == 0
                assert ann["area"] == int(obj.mask.sum())
                decoded = coco.annToMask(ann).astype(bool)  # pycocotools' own rasterisation
                inter = (decoded & obj.mask).sum()
                assert inter / max(1, (decoded | obj.mask).sum()) > 0.5
            else:
                n_rle += 1
                assert isinstance(seg["counts"], str) and seg["size"] == [scene.height, scene.width]
                assert ann["iscrowd"] == 0 and ann["area"] == int(obj.mask.sum())  # the stored value, as exported
                assert np.array_equal(coco.annToMask(ann).astype(bool), obj.mask)
                assert mask_utils.toBbox(seg).astype(int).tolist() == list(obj.box)
    if kind == "inst":
        assert n_rle and n_poly
    if kind == "sem":
        assert n_rle and not n_poly


def test_coco_edge_cases_round_trip(tmp_path: Path, edge_inst_scenes: list[Scene]) -> None:
    from ymir_conformance.datasets import EDGE_CLASS_NAMES

    summary = export_training_set(
        tmp_path, train=edge_inst_scenes, val=[], class_names=EDGE_CLASS_NAMES, export_format="seg-coco:raw"
    )
    assert summary.images["train"] == len(edge_inst_scenes)
    coco = _load_coco(tmp_path / "annotations" / "coco-annotations.json")
    by_sha1 = _by_sha1(edge_inst_scenes)
    for image in coco.dataset["images"]:
        scene = by_sha1[image["file_name"].rsplit(".", 1)[0]]
        assert image["file_name"].endswith("." + scene.ext)
        for ann, obj in zip(coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])), scene.objects):
            assert EDGE_CLASS_NAMES[ann["category_id"]] == obj.class_name
            if isinstance(ann["segmentation"], dict):
                assert obj.mask is not None and np.array_equal(coco.annToMask(ann).astype(bool), obj.mask)


# ---------------------------------------------------------------- seg-mask (2.0)


def test_seg_mask_round_trip(
    tmp_path: Path, sem_scenes: list[Scene], class_names: tuple[str, ...], host_path: HostPath
) -> None:
    export_training_set(
        tmp_path, train=sem_scenes, val=[], class_names=class_names, export_format="seg-mask:raw", release=Release(2, 0)
    )
    labelmap = (tmp_path / "annotations" / "labelmap.txt").read_text().splitlines()
    colours: dict[tuple[int, int, int], str] = {}
    for line in labelmap:
        name, rgb, _, _ = line.split(":")
        r, g, b = (int(v) for v in rgb.split(","))
        colours[(r, g, b)] = name
    assert labelmap[0] == "bg:0,0,0::" and list(colours.values())[1:] == list(class_names)
    for asset, anno in _pairs(tmp_path, "train"):
        scene = _by_sha1(sem_scenes)[_sha1_of(asset)]
        assert anno.endswith(".png")
        png = host_path(tmp_path, anno)
        if not any(o.mask is not None for o in scene.objects):
            assert not png.exists()
            continue
        pixels = np.asarray(Image.open(png).convert("RGB"))
        for obj in scene.objects:
            assert obj.mask is not None
            colour = class_colour(class_names.index(obj.class_name))
            assert (pixels[obj.mask] == colour).all()


# ---------------------------------------------------------------- properties of the writers


@settings(max_examples=200, deadline=None)
@given(data=st.data(), names=st_class_names())
def test_any_box_survives_ark_and_voc(data: st.DataObject, names: list[str]) -> None:
    scene = data.draw(detection_scenes(names))
    truth = _truth(scene, names)
    assert read_ark(render_ark(list(enumerate_labelled(scene, names)))) == truth
    assert [c for c, _ in read_ark(render_ark(list(enumerate_labelled(scene, names)), legacy=True))] == [
        c for c, _ in truth
    ]
    path = f"/in/assets/{scene.asset_relpath}"
    filename, dims, objects = read_voc(render_voc(scene, list(enumerate_labelled(scene, names)), names, path), names)
    assert (filename, dims[:2], objects) == (path, (scene.width, scene.height), truth)


def enumerate_labelled(scene: Scene, names: list[str]) -> list[tuple[int, SceneObject]]:
    return [(names.index(o.class_name), o) for o in scene.objects]
