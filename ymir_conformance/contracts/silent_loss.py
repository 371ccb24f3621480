"""What the platform keeps and what it silently drops from infer and mining results (contract §5.4, §5.5,
§6 V15, §10).

The tallies follow the platform's own order of decisions, so every dropped record is counted once, under the
first reason the platform has to drop it. In a combined mining+infer run the platform keeps predictions only for
the mining top-k, and does not record candidates with zero boxes: neither counts as a loss here.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..model import Task
from ..platform import Release
from ._values import as_float, is_hashable, is_number, stem
from .base import RunView, short

DET_MAX_BOXES_LEGACY = 50  # ymir <= 2.0 keeps at most 50 boxes per image (max_boxes read from the wrong level)
R20 = Release(2, 0)
R21 = Release(2, 1)


def norm_class(name: str) -> str:
    """The platform's label normalisation (``class_ids._normalize_and_check_name``): strip + lower case."""
    return name.strip().lower()


def candidate_stems(view: RunView) -> dict[str, str]:
    """asset id (``splitext(basename)``) -> candidate container path."""
    return {stem(c): c for c in view.candidates}


def is_combined(view: RunView) -> bool:
    return Task.MINING in view.outcome.shape.tasks and Task.INFER in view.outcome.shape.tasks


def combined_note(view: RunView, missing: bool = False) -> str:
    """What a combined mining+infer run changes about a loss count (contract §10); '' for other runs."""
    if not is_combined(view):
        return ""
    if missing:
        return ("; in this combined mining+infer run the platform records no candidate with zero boxes anyway, so "
                "a missing key loses nothing")
    return ("; in this combined mining+infer run the platform keeps predictions only for the images mining selects "
            "(top-k), so the count is the most that can be lost")


def box_list(value: Any, release: Release) -> tuple[str, Any]:
    """The list of boxes under one detection key: (key used, value), ('', None) when there is none."""
    if not isinstance(value, dict):
        return "", None
    keys = ("annotations",) if release < R20 else ("boxes", "annotations")
    for k in keys:
        if value.get(k) is not None:
            return k, value[k]
    return "", None


# --------------------------------------------------------------------------------------------------------
# Detection infer
# --------------------------------------------------------------------------------------------------------


@dataclass
class DetTally:
    images: int = 0
    boxes: int = 0
    kept: int = 0
    foreign_key_boxes: int = 0
    foreign_keys: list[str] = field(default_factory=list)
    no_score: int = 0
    unknown_class: Counter[str] = field(default_factory=Counter)
    over_cap: dict[str, int] = field(default_factory=dict)
    missing_candidates: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.foreign_key_boxes + self.no_score + sum(self.unknown_class.values()) + sum(self.over_cap.values())

    def summary(self) -> str:
        return (f"{self.boxes} boxes in {self.images} images: {self.kept} kept, {self.lost} silently dropped "
                f"({self.foreign_key_boxes} under keys matching no candidate, {self.no_score} without score, "
                f"{sum(self.unknown_class.values())} of unknown classes, {sum(self.over_cap.values())} over the "
                f"{DET_MAX_BOXES_LEGACY}-per-image cap); {len(self.missing_candidates)} candidates without a key")


def infer_doc(view: RunView) -> dict[Any, Any] | None:
    """infer-result.json when it parsed to a mapping, else None."""
    art = view.infer_result
    if not art.ok or not isinstance(art.value, dict):
        return None
    return art.value


def det_detection(view: RunView) -> dict[Any, Any] | None:
    doc = infer_doc(view)
    det = doc.get("detection") if doc is not None else None
    return det if isinstance(det, dict) else None


def det_tally(view: RunView) -> DetTally | None:
    det = det_detection(view)
    if det is None:
        return None
    release = view.release
    stems = candidate_stems(view)
    classes = {norm_class(c) for c in view.class_names}
    t = DetTally()
    seen_stems: set[str] = set()
    for key, value in det.items():
        t.images += 1
        key_s = str(key)
        _, boxes = box_list(value, release)
        boxes = boxes if isinstance(boxes, list) else []
        t.boxes += len(boxes)
        asset = stem(key_s)
        if asset not in stems:
            t.foreign_keys.append(key_s)
            t.foreign_key_boxes += len(boxes)
            continue
        seen_stems.add(asset)
        kept_scores: list[float] = []
        for box in boxes:
            if not isinstance(box, dict):
                continue
            if "score" not in box:
                t.no_score += 1
                continue
            name = box.get("class_name")
            if isinstance(name, str) and norm_class(name) and norm_class(name) not in classes:
                t.unknown_class[name.strip()] += 1
                continue
            score = as_float(box.get("score"))
            kept_scores.append(score if score is not None else 0.0)
        if release <= R20 and len(kept_scores) > DET_MAX_BOXES_LEGACY:
            t.over_cap[key_s] = len(kept_scores) - DET_MAX_BOXES_LEGACY
        t.kept += min(len(kept_scores), DET_MAX_BOXES_LEGACY) if release <= R20 else len(kept_scores)
    t.missing_candidates = [c for s, c in stems.items() if s not in seen_stems]
    return t


# --------------------------------------------------------------------------------------------------------
# COCO (segmentation) infer
# --------------------------------------------------------------------------------------------------------


@dataclass
class CocoTally:
    annotations: int = 0
    kept: int = 0
    dir_file_name: int = 0  # annotations of images whose file_name has a directory part
    foreign_file_name: int = 0  # annotations of images whose file_name is no candidate basename
    no_image: int = 0  # image_id not among images
    bad_bbox: int = 0  # bbox not exactly 4 numbers
    zero_size: int = 0  # w or h <= 0 after int()
    unknown_category: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    missing_candidates: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return (self.dir_file_name + self.foreign_file_name + self.no_image + self.bad_bbox + self.zero_size
                + sum(self.unknown_category.values()) + self.duplicates)

    def summary(self) -> str:
        return (f"{self.annotations} annotations: {self.kept} kept, {self.lost} silently dropped "
                f"({self.dir_file_name + self.foreign_file_name} on images whose file_name matches no candidate, "
                f"{self.no_image} with an unknown image_id, {self.bad_bbox + self.zero_size} with a bad or empty "
                f"bbox, {sum(self.unknown_category.values())} of unknown categories, {self.duplicates} duplicates)")


def coco_lists(doc: dict[Any, Any]) -> tuple[list[Any], list[Any], list[Any]]:
    def lst(k: str) -> list[Any]:
        v = doc.get(k)
        return v if isinstance(v, list) else []
    return lst("images"), lst("categories"), lst("annotations")


def bbox_ints(bbox: Any) -> list[int] | None:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return None
    try:
        return [int(v) for v in bbox]
    except (ValueError, OverflowError):
        return None


def coco_tally(view: RunView) -> CocoTally | None:
    doc = infer_doc(view)
    if doc is None:
        return None
    images, categories, annotations = coco_lists(doc)
    cand_basenames = {os.path.basename(c) for c in view.candidates}
    classes = {norm_class(c) for c in view.class_names}
    image_file: dict[Any, str] = {}
    for im in images:
        if isinstance(im, dict) and "id" in im and is_hashable(im["id"]) and isinstance(im.get("file_name"), str):
            image_file.setdefault(im["id"], im["file_name"])
    cat_name: dict[Any, str] = {}
    for cat in categories:
        if isinstance(cat, dict) and "id" in cat and is_hashable(cat["id"]) and isinstance(cat.get("name"), str):
            cat_name.setdefault(cat["id"], cat["name"])
    t = CocoTally()
    seen: set[tuple[Any, ...]] = set()
    matched: set[str] = set()
    for ann in annotations:
        if not isinstance(ann, dict):
            continue
        t.annotations += 1
        image_id = ann.get("image_id")
        fname = image_file.get(image_id) if is_hashable(image_id) else None
        if fname is None:
            t.no_image += 1
            continue
        if "/" in fname or "\\" in fname:
            t.dir_file_name += 1
            continue
        if fname not in cand_basenames:
            t.foreign_file_name += 1
            continue
        box = bbox_ints(ann.get("bbox"))
        if box is None:
            t.bad_bbox += 1
            continue
        if box[2] <= 0 or box[3] <= 0:
            t.zero_size += 1
            continue
        cid = ann.get("category_id")
        name = cat_name.get(cid) if is_hashable(cid) else None
        if name is None or norm_class(name) not in classes:
            t.unknown_category[name if name is not None else f"category_id {short(cid)}"] += 1
            continue
        ident = (fname, norm_class(name), tuple(box))
        if ident in seen:
            t.duplicates += 1
            continue
        seen.add(ident)
        matched.add(fname)
        t.kept += 1
    t.missing_candidates = [c for c in view.candidates if os.path.basename(c) not in set(image_file.values())]
    return t


# --------------------------------------------------------------------------------------------------------
# Mining
# --------------------------------------------------------------------------------------------------------


@dataclass
class MiningLine:
    number: int  # 1-based line number in the file
    text: str
    has_tab: bool
    path: str  # the text before the first TAB (the whole line without one)
    asset_id: str  # splitext(basename(path)), as the platform computes it
    score_text: str | None


@dataclass
class MiningTally:
    lines: list[MiningLine] = field(default_factory=list)
    no_tab_lost: list[MiningLine] = field(default_factory=list)  # no TAB, and the id matches no candidate
    foreign: list[MiningLine] = field(default_factory=list)  # with TAB, id matches no candidate
    duplicates: list[MiningLine] = field(default_factory=list)
    missing_candidates: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.lines)} lines: {len(self.no_tab_lost)} unusable (no TAB), {len(self.foreign)} naming no "
                f"candidate, {len(self.duplicates)} duplicates; {len(self.missing_candidates)} candidates not listed")


def mining_lines(text: str) -> list[MiningLine]:
    out: list[MiningLine] = []
    for i, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line:
            continue
        has_tab = "\t" in line
        path = line.split("\t")[0]
        score = line.split("\t")[1] if has_tab else None
        out.append(MiningLine(i, line, has_tab, path, stem(path), score))
    return out


def mining_tally(view: RunView) -> MiningTally | None:
    art = view.mining_result
    if not art.ok:
        return None
    stems = candidate_stems(view)
    t = MiningTally(lines=mining_lines(art.text))
    seen: set[str] = set()
    for ln in t.lines:
        if ln.asset_id not in stems:
            (t.foreign if ln.has_tab else t.no_tab_lost).append(ln)
            continue
        if ln.asset_id in seen:
            t.duplicates.append(ln)
            continue
        seen.add(ln.asset_id)
    t.missing_candidates = [c for s, c in stems.items() if s not in seen]
    return t


def summaries(view: RunView) -> list[str]:
    """One line per result file: what the platform keeps and drops (for reports)."""
    out: list[str] = []
    obj = view.outcome.object_type
    if Task.INFER in view.outcome.shape.tasks:
        if int(obj) == 2:
            det = det_tally(view)
            if det is not None:
                out.append("infer-result.json: " + det.summary() + combined_note(view))
        else:
            coco = coco_tally(view)
            if coco is not None:
                out.append("infer-result.json: " + coco.summary() + combined_note(view))
    if Task.MINING in view.outcome.shape.tasks:
        mt = mining_tally(view)
        if mt is not None:
            out.append("result.tsv: " + mt.summary())
    return out
