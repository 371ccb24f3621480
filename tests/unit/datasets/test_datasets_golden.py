"""Byte-for-byte snapshots of every export format for a tiny fixed dataset, so format drift shows in review.

The snapshots live in ``tests/golden/datasets-*.txt``. After an intended change, regenerate them with::

    YMIR_REGEN_GOLDEN=1 python -m pytest tests/unit/datasets/test_datasets_golden.py -p no:cacheprovider

and review the diff. Images are BMP (uncompressed) so the snapshots do not depend on the JPEG/zlib build.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ymir_conformance.datasets import Scene, export_candidates, export_training_set, generate_scenes
from ymir_conformance.model import ObjectType
from ymir_conformance.platform import Release

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"
REGEN = os.environ.get("YMIR_REGEN_GOLDEN") == "1"
SEED = 2024
NAMES = ("cat", "dog", "person")
TEXT_SUFFIXES = (".tsv", ".txt", ".xml", ".json")

CASES: dict[str, tuple[ObjectType, str, str]] = {
    "det-ark-2.5": (ObjectType.DETECTION, "det-ark:raw", "2.5"),
    "det-voc-2.5": (ObjectType.DETECTION, "det-voc:raw", "2.5"),
    "det-ls-json-2.4": (ObjectType.DETECTION, "det-ls-json:raw", "2.4"),
    "det-coco-2.5": (ObjectType.DETECTION, "coco:raw", "2.5"),
    "det-none-2.5": (ObjectType.DETECTION, "none:raw", "2.5"),
    "det-ark-1.1": (ObjectType.DETECTION, "", "1.1"),
    "instseg-seg-coco-2.5": (ObjectType.INSTANCE_SEGMENTATION, "seg-coco:raw", "2.5"),
    "semseg-seg-coco-2.1": (ObjectType.SEMANTIC_SEGMENTATION, "seg-coco:raw", "2.1"),
    "semseg-seg-mask-2.0": (ObjectType.SEMANTIC_SEGMENTATION, "seg-mask:raw", "2.0"),
}


def _scenes(object_type: ObjectType, count: int = 3, seed: int = SEED) -> list[Scene]:
    return list(
        generate_scenes(seed, count, object_type, NAMES, min_size=(48, 32), max_size=(96, 64), image_exts=("bmp",))
    )


def snapshot(root: Path) -> str:
    """Every file under ``root``: text files verbatim, binary ones (assets, PNG masks) by size and sha1."""
    out = [f"# golden snapshot; regenerate: YMIR_REGEN_GOLDEN=1 pytest {Path(__file__).name}\n"]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if path.suffix in TEXT_SUFFIXES and not rel.startswith("assets/"):
            out.append(f"=== {rel} ({len(data)} bytes)\n{data.decode('utf-8')}\n")
        else:
            out.append(f"=== {rel} ({len(data)} bytes, sha1 {hashlib.sha1(data).hexdigest()})\n")
    return "".join(out)


def _check(name: str, actual: str) -> None:
    golden = GOLDEN_DIR / f"datasets-{name}.txt"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert golden.is_file(), f"missing {golden}; generate it with YMIR_REGEN_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    assert actual == expected, f"{golden.name} differs; if intended, regenerate with YMIR_REGEN_GOLDEN=1"


@pytest.mark.parametrize("name", list(CASES))
def test_export_matches_golden(tmp_path: Path, name: str) -> None:
    object_type, export_format, release = CASES[name]
    scenes = _scenes(object_type)
    export_training_set(
        tmp_path, train=scenes[:2], val=scenes[2:], class_names=NAMES,
        export_format=export_format, release=Release.parse(release),
    )
    _check(name, snapshot(tmp_path))


# The platform's training data: a selection of the dataset's labels (indexes in class_names differ from the label
# ids of the label store; "car" unselected, its objects unlabelled) and a test split (test-index.tsv).
LABELS = ("car", "dog", "person", "cat")
SELECTED = ("person", "cat", "dog")
SUBSET_CASES: dict[str, tuple[ObjectType, str]] = {
    "det-ark-subset-test-2.5": (ObjectType.DETECTION, "det-ark:raw"),
    "det-voc-subset-test-2.5": (ObjectType.DETECTION, "det-voc:raw"),
    "instseg-seg-coco-subset-test-2.5": (ObjectType.INSTANCE_SEGMENTATION, "seg-coco:raw"),
}


@pytest.mark.parametrize("name", list(SUBSET_CASES))
def test_class_subset_and_test_split_match_golden(tmp_path: Path, name: str) -> None:
    object_type, export_format = SUBSET_CASES[name]
    scenes = list(generate_scenes(SEED + 2, 4, object_type, LABELS, min_size=(48, 32), max_size=(96, 64),
                                  image_exts=("bmp",)))
    assert "car" in {o.class_name for sc in scenes for o in sc.objects}  # an unselected label is drawn
    summary = export_training_set(tmp_path, train=scenes[:2], val=scenes[2:3], test=scenes[3:], class_names=SELECTED,
                                  label_names=LABELS, export_format=export_format, release=Release(2, 5))
    assert summary.images == {"train": 2, "val": 1, "test": 1}
    assert "car" not in summary.objects_per_class
    _check(name, snapshot(tmp_path))


def test_candidates_match_golden(tmp_path: Path) -> None:
    scenes = _scenes(ObjectType.DETECTION, seed=SEED + 1)
    export_candidates(tmp_path / "dataset", scenes)
    export_candidates(tmp_path / "single", scenes, flat_names=True)
    _check("candidates", snapshot(tmp_path))
