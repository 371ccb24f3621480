"""Infer output checks: ``/out/infer-result.json`` for detection (INF-01..INF-08) and the COCO JSON of
segmentation / multi-modal images (INF-10..INF-14) (contract §5.4, §6 V9-V11, V15, §10).

INF-01 (detection) and INF-10 (COCO) own the file: when it is missing, unreadable or not the expected
top-level object only they report, and every other infer check yields nothing.
"""
from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

from ..model import ObjectType, Task
from ..platform import Release
from ._values import as_float, described, is_number, key_text, kind, stem
from .base import COCO_TYPES, DETECTION_ONLY, Area, Level, RunView, Violation, cap, check, short
from .silent_loss import (
    DET_MAX_BOXES_LEGACY,
    bbox_ints,
    box_list,
    coco_lists,
    coco_tally,
    combined_note,
    det_detection,
    det_tally,
    infer_doc,
)

RESULT = "/out/infer-result.json"
INFER = [Task.INFER]
R20 = Release(2, 0)
R21 = Release(2, 1)
R24 = Release(2, 4)
INT32 = 2 ** 31

DET_EXAMPLE = ('{"detection": {"<sha1>.jpg": {"boxes": [{"box": {"x": 30, "y": 30, "w": 50, "h": 50}, '
               '"class_name": "cat", "score": 0.8}]}}}')
FIX_DET = (
    "Write /out/infer-result.json as one JSON object {\"detection\": {<image basename>: {\"boxes\": [...]}}} with "
    "one key per line of /in/candidate-index.tsv (os.path.basename of the path; {\"boxes\": []} when nothing is "
    "found) and each box as {\"box\": {\"x\": int, \"y\": int, \"w\": int, \"h\": int}, \"class_name\": <one of "
    "config class_names>, \"score\": float in [0, 1]}; x, y is the top-left corner in pixels. The SDK's "
    "ymir_exc.result_writer.write_infer_result does this."
)
FIX_DET_11 = (
    "ymir 1.1 (env.yaml has no protocol_version) reads the protocol 0.0.0 key: write /out/infer-result.json as "
    "{\"detection\": {<image basename>: {\"annotations\": [...]}}} (not \"boxes\", which 1.1 does not read; "
    "2.x accept both), one key per line of /in/candidate-index.tsv ({\"annotations\": []} when nothing is found), "
    "each box as {\"box\": {\"x\": int, \"y\": int, \"w\": int, \"h\": int}, \"class_name\": <one of config "
    "class_names>, \"score\": float in [0, 1]} (no rotate_angle on 1.1). ymir_exc 1.1's write_infer_result does this."
)


def fix_det(release: Release) -> str:
    """The detection-result fix for ``release``: 1.1 reads 'annotations', 2.x 'boxes' (INF-03)."""
    return FIX_DET_11 if release < R20 else FIX_DET


def registered_type_mismatch(view: RunView, rule: str) -> Iterator[Violation]:
    """On ymir 2.1-2.3 a model's object type is its training result.yaml object_type (TR-12): a segmentation
    model registered as detection has its COCO result parsed as detection JSON (rejected, 160010), a detection
    model registered as segmentation has its detection result parsed as COCO (KeyError). Judged from the training
    run of this session (``RunOutcome.model_object_type``)."""
    registered = view.outcome.model_object_type
    want = int(view.outcome.object_type)
    if registered is None or not (R21 <= view.release < R24):
        return
    detection = want == int(ObjectType.DETECTION)
    if detection == (registered == int(ObjectType.DETECTION)):
        return
    parsed = ("COCO segmentation JSON: there is no 'images' key, the task fails (KeyError)" if detection
              else "detection JSON: there is no 'detection' key, the task fails (160010)")
    yield Violation(rule, f"TR-12: the training run's result.yaml gives the model object_type {registered}"
                    f"{' (no object_type key: the default)' if registered == 2 else ''}, and ymir 2.1-2.3 register "
                    f"the model with that type, so this infer result of object type {want} is parsed as {parsed}, "
                    "whatever it holds; fix the training's result.yaml (TR-12)",
                    file=RESULT, where="(model object type)", found=f"model registered as object_type {registered}",
                    expected=f"object_type: {want} in the training's /out/models/result.yaml",
                    fix=f"Write object_type: {want} at the top level of /out/models/result.yaml in training (take "
                        "it from your /img-man/manifest.yaml; ymir 2.1-2.3 have no object_type in config.yaml).")


FIX_BOX = (
    "Give every box the keys box, class_name and score. box holds exactly x, y, w, h as integers (round with "
    "int(round(v)); numpy types must be converted with int()) and optionally rotate_angle (float, ymir 2.x "
    "only); any other key inside box, a float coordinate such as 12.5, or a missing class_name makes the "
    "platform fail the whole task (169999). Write score as a plain float for every box."
)
COCO_EXAMPLE = ('{"images": [{"id": 1, "file_name": "<sha1>.jpg", "width": W, "height": H}], "categories": '
                '[{"id": 0, "name": "cat"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 0, '
                '"bbox": [x, y, w, h], "area": A, "iscrowd": 0, "segmentation": {"counts": "<RLE>", "size": [H, W]}, '
                '"confidence": 0.9}]}')
FIX_COCO = (
    "Write /out/infer-result.json as a COCO object with the three lists images, categories and annotations: one "
    "image per line of /in/candidate-index.tsv with file_name = os.path.basename(path) and its width/height, "
    "categories named exactly as config class_names, and per annotation image_id, category_id, bbox [x, y, w, "
    "h], area, iscrowd, confidence and segmentation as a compressed RLE (pycocotools.mask.encode(np.asfortranarray"
    "(mask)) with counts decoded to str) or a list holding exactly one polygon."
)


def _k(key: Any) -> str:
    """A detection key as a location shows it: bare, at most 80 characters."""
    return key_text(str(key))[:80]


def _loss_note(view: RunView) -> str:
    return combined_note(view)


# ========================================================================================================
# Detection
# ========================================================================================================


@check("INF-01", "infer-result.json is a JSON object with a 'detection' object", area=Area.INFER,
       level=Level.MUST, tasks=INFER, object_types=DETECTION_ONLY)
def inf_01(view: RunView) -> Iterator[Violation]:
    yield from registered_type_mismatch(view, "INF-01")
    art = view.infer_result
    if not art.exists:
        consequence = ("2.1+ raise an unhandled FileNotFoundError and fail the task (169999)" if view.release >= R21
                       else "the platform fails the task (160011 no result)")
        yield Violation("INF-01", f"/out/infer-result.json does not exist after the infer run: {consequence}",
                        file=RESULT, found="no file", expected=DET_EXAMPLE, fix=fix_det(view.release))
        return
    code = "160011" if view.release >= R24 else "160010" if view.release >= R21 else "169999"
    # measured with ymir-cmd 1.1.0 (tests/differential): it logs the error and imports no prediction at all
    fails = ("the platform logs an error and the task succeeds with every prediction lost" if view.release < R20
             else f"the platform fails the task ({code})")
    if not art.ok:
        yield Violation("INF-01", f"/out/infer-result.json {art.problem}: {fails}",
                        file=RESULT, found=short(art.text[:200]) if art.text else art.problem,
                        expected="a JSON object", fix=fix_det(view.release))
        return
    doc = art.value
    if not isinstance(doc, dict):
        yield Violation("INF-01", f"/out/infer-result.json holds {kind(doc)}, not a JSON object: {fails}",
                        file=RESULT, found=described(doc), expected=DET_EXAMPLE,
                        fix=fix_det(view.release))
        return
    if "detection" not in doc or not isinstance(doc["detection"], dict):
        what = "has no 'detection' key" if "detection" not in doc else f"has 'detection' = {described(doc['detection'])}"
        extra = ""
        if {"images", "annotations"} & set(map(str, doc)):
            extra = (" (it looks like a COCO segmentation result: on ymir 2.1-2.3 a segmentation model whose "
                     "result.yaml lacks object_type is treated as detection, see TR-12)")
        yield Violation("INF-01", f"/out/infer-result.json {what}{extra}: {fails}",
                        file=RESULT, where="detection", found=f"keys {short(sorted(map(str, doc)))}",
                        expected=DET_EXAMPLE, fix=fix_det(view.release))


@check("INF-02", "detection keys are image basenames", area=Area.INFER, level=Level.SHOULD, tasks=INFER,
       object_types=DETECTION_ONLY)
def inf_02(view: RunView) -> Iterator[Violation]:
    det = det_detection(view)
    if det is None:
        return
    bad = [Violation("INF-02", f"detection key {short(k)} is a path, not the image basename; the platform applies "
                     "basename() so it still works, but the contract asks for the bare name", file=RESULT,
                     where=f"detection.{_k(k)}", found=short(k), expected=short(os.path.basename(str(k))),
                     fix="Key every image by os.path.basename(<path from candidate-index.tsv>).")
           for k in det if "/" in str(k)]
    yield from cap(bad)


@check("INF-03", "every detection value is an object with a list of boxes", area=Area.INFER, level=Level.MUST,
       tasks=INFER, object_types=DETECTION_ONLY)
def inf_03(view: RunView) -> Iterator[Violation]:
    det = det_detection(view)
    if det is None:
        return
    want = "annotations" if view.release < R20 else "boxes"
    crash: list[Violation] = []
    skipped: list[Violation] = []
    for key, value in det.items():
        where = f"detection.{_k(key)}"
        if not isinstance(value, dict):
            crash.append(Violation("INF-03", f"the value of {short(key)} is {kind(value)}, not an object: "
                                   + ("ymir 1.1 silently skips the image (its predictions are lost)"
                                      if view.release < R20 else "the platform crashes on it and fails the task"),
                                   file=RESULT, where=where, found=described(value),
                                   expected=f'{{"{want}": [...]}}', fix=fix_det(view.release)))
            continue
        used, boxes = box_list(value, view.release)
        if not used:
            note = (" (ymir 1.1 reads only 'annotations', the protocol 0.0.0 name)" if view.release < R20
                    and "boxes" in value else "")
            skipped.append(Violation("INF-03", f"the value of {short(key)} has no '{want}' list{note}: the platform "
                                     "skips the image", file=RESULT, where=where,
                                     found=f"keys {short(sorted(map(str, value)))}", expected=f'{{"{want}": [...]}}',
                                     fix=fix_det(view.release)))
        elif not isinstance(boxes, list):
            crash.append(Violation("INF-03", f"{used} of {short(key)} is {kind(boxes)}, not a list: the platform "
                                   "crashes on it and fails the task", file=RESULT, where=f"{where}.{used}",
                                   found=described(boxes), expected="a list of boxes", fix=fix_det(view.release)))
    yield from cap(crash)
    yield from cap(skipped)


def _iter_boxes(view: RunView) -> Iterator[tuple[str, int, Any]]:
    """(image key, index, box) of every entry in a boxes list."""
    det = det_detection(view)
    for key, value in (det or {}).items():
        _, boxes = box_list(value, view.release)
        if isinstance(boxes, list):
            for i, box in enumerate(boxes):
                yield str(key), i, box


def _proto_int(v: Any) -> bool:
    """What protobuf json_format accepts for an int32 field."""
    if isinstance(v, bool):
        return False
    if isinstance(v, float):
        return math.isfinite(v) and v.is_integer() and -INT32 <= v < INT32
    if isinstance(v, int):
        return -INT32 <= v < INT32
    if isinstance(v, str) and " " not in v:
        try:
            return -INT32 <= int(v) < INT32
        except ValueError:
            return False
    return False


@check("INF-04", "every box: integer x/y/w/h in 'box', non-empty class_name, a score", area=Area.INFER,
       level=Level.MUST, tasks=INFER, object_types=DETECTION_ONLY)
def inf_04(view: RunView) -> Iterator[Violation]:
    release = view.release
    allowed = {"x", "y", "w", "h"} | ({"rotate_angle"} if release >= R20 else set())
    crash: list[Violation] = []
    missing_coord: list[Violation] = []
    no_score: list[tuple[str, int]] = []
    rect_example = "{x: <int>, y: <int>, w: <int>, h: <int>" + (", rotate_angle: <float>}" if release >= R20 else "}")
    box_example = "{box: " + rect_example + ", class_name: <one of class_names>, score: <float in [0, 1]>}"
    for key, i, box in _iter_boxes(view):
        where = f"detection.{_k(key)}.boxes[{i}]"
        if not isinstance(box, dict):
            crash.append(_crash(where, f"box entry is {kind(box)}, not an object", described(box), box_example))
            continue
        name = box.get("class_name")
        if not isinstance(name, str) or not name.strip():
            crash.append(_crash(where + ".class_name", "class_name is missing or empty" if not isinstance(name, str)
                                or not name else "class_name is blank", described(name) if "class_name" in box
                                else "no key", "class_name: one of config class_names"))
        rect = box.get("box")
        if not isinstance(rect, dict):
            crash.append(_crash(where + ".box", f"'box' is {kind(rect) if 'box' in box else 'missing'}",
                                described(rect) if "box" in box else f"keys {short(sorted(map(str, box)))}",
                                f"box: {rect_example}"))
        else:
            unknown = sorted(str(k) for k in rect if k not in allowed)
            if unknown:
                why = ("rotate_angle does not exist in ymir 1.1's Rect" if unknown == ["rotate_angle"]
                       else "protobuf Rect rejects unknown fields")
                crash.append(_crash(where + ".box", f"'box' has unknown key(s) {', '.join(unknown)} ({why})",
                                    short(rect), f"only the keys {', '.join(sorted(allowed))}"))
            for c in ("x", "y", "w", "h"):
                if c not in rect:
                    missing_coord.append(Violation("INF-04", f"box.{c} is missing; the platform silently uses 0",
                                                   file=RESULT, where=where + f".box.{c}", found="no key",
                                                   expected="an integer", fix=FIX_BOX))
                elif not _proto_int(rect[c]):
                    crash.append(_crash(where + f".box.{c}", f"box.{c} is {described(rect[c])}, not an integer "
                                        "(protobuf Rect rejects it)", described(rect[c]),
                                        f"an integer, e.g. {_int_hint(rect[c])}"))
            if "rotate_angle" in rect and "rotate_angle" in allowed and as_float(rect["rotate_angle"]) is None:
                crash.append(_crash(where + ".box.rotate_angle", "rotate_angle is not a number",
                                    described(rect["rotate_angle"]), "a float (degrees), e.g. 0.0"))
        if "score" not in box:
            no_score.append((key, i))
        elif not is_number(box["score"]):
            crash.append(_crash(where + ".score", f"score is {kind(box['score'])}, not a number",
                                described(box["score"]), "score: a float in [0, 1]"))
    yield from cap(crash)
    yield from cap(missing_coord)
    if no_score:
        key, i = no_score[0]
        images = len({k for k, _ in no_score})
        if release >= R21:
            yield Violation("INF-04", f"{len(no_score)} box(es) in {images} image(s) have no score: ymir 2.1+ "
                            "silently drop them (the task succeeds with fewer predictions)" + _loss_note(view),
                            file=RESULT, where=f"detection.{_k(key)}.boxes[{i}]", found="no 'score' key",
                            expected="score: float in [0, 1]", fix=FIX_BOX, lost=len(no_score))
        else:
            yield Violation("INF-04", f"{len(no_score)} box(es) in {images} image(s) have no score: ymir <= 2.0 sort "
                            "boxes by score and crash (KeyError), failing the task", file=RESULT,
                            where=f"detection.{_k(key)}.boxes[{i}]", found="no 'score' key",
                            expected="score: float in [0, 1]", fix=FIX_BOX)


def _crash(where: str, what: str, found: str, expected: str) -> Violation:
    return Violation("INF-04", f"{what}: the platform fails the whole task on this box", file=RESULT, where=where,
                     found=found, expected=expected, fix=FIX_BOX)


def _int_hint(value: Any) -> str:
    """The integer a coordinate stands for (``12.5`` -> ``12``), else ``12``."""
    f = as_float(value)
    return str(int(round(f))) if f is not None and math.isfinite(f) and abs(f) < INT32 else "12"


@check("INF-05", "every class_name is one of config class_names", area=Area.INFER, level=Level.SHOULD,
       tasks=INFER, object_types=DETECTION_ONLY)
def inf_05(view: RunView) -> Iterator[Violation]:
    t = det_tally(view)
    if t is None or not t.unknown_class:
        return
    known = ", ".join(view.class_names) or "(none)"
    out = [Violation("INF-05", f"{n} box(es) have class_name {short(name)}, which is not in config class_names: the "
                     "platform silently drops them (ymir 2.5 single-image infer keeps them as unknown class -1)"
                     + _loss_note(view), file=RESULT, where="class_name", found=short(name),
                     expected=f"one of {short(known, 200)} (matched case-insensitively, stripped)",
                     fix="Map model output indices to names through /in/config.yaml class_names, in that order "
                         "(class_names[i] for output index i); never write labels baked into the weights.",
                     lost=n)
           for name, n in t.unknown_class.most_common()]
    yield from cap(out)


@check("INF-06", "scores in [0, 1]; boxes non-empty and inside the image", area=Area.INFER, level=Level.SHOULD,
       tasks=INFER, object_types=DETECTION_ONLY)
def inf_06(view: RunView) -> Iterator[Violation]:
    sizes = view.candidate_sizes
    by_stem = {stem(k): v for k, v in sizes.items()}
    score_bad: list[Violation] = []
    empty: list[Violation] = []
    outside: list[Violation] = []
    fix = ("Clip boxes to the image (0 <= x, 0 <= y, x + w <= width, y + h <= height), drop boxes with w or h <= 0, "
           "and write the detector's confidence as a probability in [0, 1].")
    for key, i, box in _iter_boxes(view):
        if not isinstance(box, dict):
            continue
        where = f"detection.{_k(key)}.boxes[{i}]"
        s = box.get("score")
        if isinstance(s, (int, float)) and not isinstance(s, bool) and not (0.0 <= float(s) <= 1.0):
            score_bad.append(Violation("INF-06", f"score {short(s)} is outside [0, 1]", file=RESULT, where=where + ".score",
                                       found=short(s), expected="0 <= score <= 1", fix=fix))
        rect = box.get("box")
        if not isinstance(rect, dict) or not all(_proto_int(rect.get(c, 0)) for c in "xywh"):
            continue
        x, y, w, h = (int(rect.get(c, 0)) for c in "xywh")
        if w <= 0 or h <= 0:
            empty.append(Violation("INF-06", f"box has w={w}, h={h}: an empty box", file=RESULT, where=where + ".box",
                                   found=short(rect), expected="w > 0 and h > 0", fix=fix))
            continue
        size = by_stem.get(stem(key))
        if size is not None:
            W, H = size
            if x < 0 or y < 0 or x + w > W or y + h > H:
                outside.append(Violation("INF-06", f"box x={x}, y={y}, w={w}, h={h} lies outside the {W}x{H} image",
                                         file=RESULT, where=where + ".box", found=short(rect),
                                         expected=f"0 <= x, 0 <= y, x + w <= {W}, y + h <= {H}", fix=fix))
    yield from cap(score_bad)
    yield from cap(empty)
    yield from cap(outside)


@check("INF-07", "at most 50 boxes per image (ymir <= 2.0 keeps the 50 best)", area=Area.INFER,
       levels={"-2.0": Level.SHOULD}, tasks=INFER, object_types=DETECTION_ONLY)
def inf_07(view: RunView) -> Iterator[Violation]:
    t = det_tally(view)
    if t is None or not t.over_cap:
        return
    out = [Violation("INF-07", f"image {short(key)} has {n + DET_MAX_BOXES_LEGACY} boxes: ymir <= 2.0 keep only the "
                     f"{DET_MAX_BOXES_LEGACY} with the highest score and drop {n}", file=RESULT,
                     where=f"detection.{_k(key)}.boxes", found=f"{n + DET_MAX_BOXES_LEGACY} boxes",
                     expected=f"<= {DET_MAX_BOXES_LEGACY} boxes", lost=n,
                     fix="Apply a confidence threshold and NMS, and keep at most the 50 best boxes per image for "
                         "ymir <= 2.0.")
           for key, n in sorted(t.over_cap.items())]
    yield from cap(out)


@check("INF-08", "every candidate image has a key, and every key is a candidate", area=Area.INFER,
       level=Level.SHOULD, tasks=INFER, object_types=DETECTION_ONLY)
def inf_08(view: RunView) -> Iterator[Violation]:
    t = det_tally(view)
    if t is None:
        return
    fix = ("Write one key per line of /in/candidate-index.tsv, named os.path.basename(<that path>) (the "
           "platform's asset id is splitext(basename(key))[0] and must be the asset's sha1), with {\"boxes\": []} "
           "for images without detections; never invent, rename or re-encode names.")
    if t.foreign_keys:
        example = t.foreign_keys[0]
        yield Violation("INF-08", f"{len(t.foreign_keys)} key(s) match no candidate image: the platform silently drops "
                        f"their {t.foreign_key_boxes} box(es)" + _loss_note(view), file=RESULT,
                        where=f"detection.{short(example, 60)}", found=", ".join(short(k, 60) for k in t.foreign_keys[:5]),
                        expected="basenames from /in/candidate-index.tsv", fix=fix, lost=t.foreign_key_boxes)
    if t.missing_candidates:
        n, total = len(t.missing_candidates), len(view.candidates)
        yield Violation("INF-08", f"{n} of {total} candidate image(s) have no key in 'detection' (write "
                        "{\"boxes\": []} for images without detections)" + combined_note(view, missing=True), file=RESULT,
                        where="detection", found=", ".join(os.path.basename(c) for c in t.missing_candidates[:5]),
                        expected="one key per candidate", fix=fix)


# ========================================================================================================
# COCO (semantic / instance segmentation, multi-modal), ymir >= 2.1
# ========================================================================================================


@check("INF-10", "COCO result: a JSON object with images, categories and annotations lists", area=Area.INFER,
       levels={"2.1+": Level.MUST}, tasks=INFER, object_types=COCO_TYPES)
def inf_10(view: RunView) -> Iterator[Violation]:
    yield from registered_type_mismatch(view, "INF-10")
    art = view.infer_result
    if not art.exists:
        yield Violation("INF-10", "/out/infer-result.json does not exist after the infer run: the platform fails "
                        "the task", file=RESULT, found="no file", expected=COCO_EXAMPLE, fix=FIX_COCO)
        return
    if not art.ok:
        yield Violation("INF-10", f"/out/infer-result.json {art.problem}: the platform fails the task", file=RESULT,
                        found=short(art.text[:200]) if art.text else art.problem, expected="a JSON object",
                        fix=FIX_COCO)
        return
    doc = art.value
    if not isinstance(doc, dict):
        yield Violation("INF-10", f"/out/infer-result.json holds {kind(doc)}, not a JSON object", file=RESULT,
                        found=described(doc), expected=COCO_EXAMPLE, fix=FIX_COCO)
        return
    old = view.release < R24
    for key in ("images", "categories", "annotations"):
        if key not in doc:
            extra = " (this is the detection format; segmentation images write COCO)" if "detection" in doc else ""
            yield Violation("INF-10", f"the top-level key {short(key)} is missing{extra}: the platform fails the task "
                            "(KeyError)", file=RESULT, where=key, found=f"keys {short(sorted(map(str, doc)))}",
                            expected=COCO_EXAMPLE, fix=FIX_COCO)
        elif not isinstance(doc[key], list):
            effect = "the platform fails the task" if old else "ymir 2.4+ treat it as empty: everything is lost"
            yield Violation("INF-10", f"{short(key)} is {kind(doc[key])}, not a list: {effect}", file=RESULT, where=key,
                            found=described(doc[key]), expected="a list", fix=FIX_COCO)
        elif key == "images" and not doc[key] and old and view.candidates:
            yield Violation("INF-10", "'images' is empty: ymir 2.1-2.3 fail the task (160016)", file=RESULT,
                            where=key, found="[]", expected="one entry per candidate", fix=FIX_COCO)
    images, categories, _ = coco_lists(doc)
    bad: list[Violation] = []
    for i, im in enumerate(images):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            bad.append(Violation("INF-10", f"images[{i}] is not an object with id and file_name", file=RESULT,
                                 where=f"images[{i}]", found=described(im), expected='{"id": 1, "file_name": ...}',
                                 fix=FIX_COCO))
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            bad.append(Violation("INF-10", f"categories[{i}] is not an object with id and name", file=RESULT,
                                 where=f"categories[{i}]", found=described(cat), expected='{"id": 0, "name": "cat"}',
                                 fix=FIX_COCO))
    yield from cap(bad)


def _annotations_by_image(annotations: list[Any]) -> Counter[Any]:
    c: Counter[Any] = Counter()
    for a in annotations:
        if isinstance(a, dict):
            try:
                c[a.get("image_id")] += 1
            except TypeError:
                continue
    return c


@check("INF-11", "COCO images[].file_name is the bare candidate basename", area=Area.INFER,
       levels={"2.1+": Level.MUST}, tasks=INFER, object_types=COCO_TYPES)
def inf_11(view: RunView) -> Iterator[Violation]:
    doc = infer_doc(view)
    if doc is None:
        return
    images, _, annotations = coco_lists(doc)
    per_image = _annotations_by_image(annotations)
    basenames = {os.path.basename(c) for c in view.candidates}
    fix = ("Set images[].file_name to os.path.basename(<path from /in/candidate-index.tsv>), e.g. '<sha1>.jpg', "
           "never the full /in/assets/... path: the platform looks images up by basename, and an image whose "
           "file_name does not match loses all its annotations without any error.")
    bad: list[Violation] = []
    ids: Counter[Any] = Counter()
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            continue
        iid = im.get("id")
        try:
            ids[iid] += 1
            n = per_image.get(iid, 0)
        except TypeError:
            n = 0
        name = im.get("file_name")
        if not isinstance(name, str):
            continue
        if "/" in name or "\\" in name:
            bad.append(Violation("INF-11", f"images[{i}].file_name {short(name)} has a directory part: the platform never "
                                 f"matches it and silently drops its {n} annotation(s)" + _loss_note(view),
                                 file=RESULT, where=f"images[{i}].file_name", found=short(name),
                                 expected=short(os.path.basename(name)), fix=fix, lost=n))
        elif name not in basenames:
            bad.append(Violation("INF-11", f"images[{i}].file_name {short(name)} is not the basename of any candidate: "
                                 f"its {n} annotation(s) are silently dropped" + _loss_note(view), file=RESULT,
                                 where=f"images[{i}].file_name", found=short(name),
                                 expected="a basename from /in/candidate-index.tsv", fix=fix, lost=n))
    for iid, n in ids.items():
        if n > 1:
            bad.append(Violation("INF-11", f"image id {short(iid)} is used by {n} images: annotations cannot be "
                                 "attributed (ymir 2.5 drops the duplicates)", file=RESULT, where="images[].id",
                                 found=short(iid), expected="unique image ids", fix=fix))
    yield from cap(bad)


# -- RLE ---------------------------------------------------------------------------------------------------

MAX_RLE_DECODES = 500
MAX_MASK_PIXELS = 64 * 1024 * 1024


def rle_counts(s: str) -> list[int] | str:
    """Decode a compressed COCO RLE string (pycocotools ``rleFrString``) into run lengths, or say why not."""
    cnts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                return "the string ends in the middle of a number"
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                return f"character {short(s[p])} at {p} is not an RLE character"
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        if x < 0:
            return f"run {len(cnts)} is negative"
        cnts.append(x)
    return cnts


def rle_problem(seg: dict[Any, Any], size: tuple[int, int] | None, budget: list[int]) -> str:
    counts, rsize = seg.get("counts"), seg.get("size")
    if isinstance(counts, list):
        return "segmentation.counts is a list (uncompressed RLE): the platform expects a compressed RLE string and crashes (TypeError)"
    if not isinstance(counts, str):
        return f"segmentation.counts is {kind(counts)}, not a compressed RLE string"
    if (not isinstance(rsize, list) or len(rsize) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                  and v > 0 for v in rsize)):
        return f"segmentation.size is {described(rsize)}, not [height, width]"
    h, w = rsize
    if size is not None and (h, w) != (size[1], size[0]):
        return f"segmentation.size is [{h}, {w}] but the image is {size[0]}x{size[1]} (size is [height, width])"
    runs = rle_counts(counts)
    if isinstance(runs, str):
        return f"segmentation.counts is not a valid compressed RLE: {runs}"
    if sum(runs) != h * w:
        return f"segmentation.counts covers {sum(runs)} pixels, not {h}x{w} = {h * w}"
    if budget[0] > 0 and h * w <= MAX_MASK_PIXELS:
        budget[0] -= 1
        try:
            import pycocotools.mask as mask_util

            with warnings.catch_warnings():  # pycocotools on numpy 2 warns about __array__(copy=...)
                warnings.simplefilter("ignore")
                m = mask_util.decode({"counts": counts.encode("ascii"), "size": [h, w]})
            if tuple(m.shape[:2]) != (h, w):
                return f"segmentation decodes to shape {tuple(m.shape)}, not ({h}, {w})"
        except Exception as exc:
            return f"pycocotools cannot decode segmentation: {exc}"
    return ""


def polygon_problem(seg: list[Any]) -> str:
    if len(seg) == 0:
        return "segmentation is an empty list: the platform crashes on it (ymir <= 2.5.0)"
    if len(seg) > 1:
        return f"segmentation holds {len(seg)} polygons: the platform accepts exactly one (NotImplementedError)"
    poly = seg[0]
    if not isinstance(poly, list) or not all(is_number(v) for v in poly):
        return f"segmentation[0] is {described(poly)}, not a flat list of numbers [x1, y1, x2, y2, ...]"
    if len(poly) < 6 or len(poly) % 2:
        return f"the polygon has {len(poly)} coordinates: it needs an even number, at least 6"
    return ""


@check("INF-12", "COCO annotations: image_id, category_id, 4-number bbox, area, decodable segmentation",
       area=Area.INFER, levels={"2.1+": Level.MUST}, tasks=INFER, object_types=COCO_TYPES)
def inf_12(view: RunView) -> Iterator[Violation]:
    doc = infer_doc(view)
    if doc is None:
        return
    images, _, annotations = coco_lists(doc)
    sizes = view.candidate_sizes
    image_size: dict[Any, tuple[int, int]] = {}
    image_ids: set[Any] = set()
    for im in images:
        if isinstance(im, dict):
            try:
                image_ids.add(im.get("id"))
                if isinstance(im.get("file_name"), str) and os.path.basename(im["file_name"]) in sizes:
                    image_size[im.get("id")] = sizes[os.path.basename(im["file_name"])]
            except TypeError:
                continue
    crash: list[Violation] = []
    dropped: dict[str, list[Violation]] = {}
    budget = [MAX_RLE_DECODES]

    def drop(kind_: str, v: Violation) -> None:
        dropped.setdefault(kind_, []).append(v)

    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            crash.append(_coco_crash(where, f"annotation is {kind(ann)}, not an object", described(ann),
                                     '{"id": 1, "image_id": 1, "category_id": 0, "bbox": [x, y, w, h], "area": A, '
                                     '"iscrowd": 0, "segmentation": {"counts": "<RLE>", "size": [H, W]}}'))
            continue
        for k in ("image_id", "category_id", "area"):
            if k not in ann:
                crash.append(_coco_crash(f"{where}.{k}", f"{k} is missing (KeyError)", "no key", COCO_KEYS[k]))
        if "area" in ann and not is_number(ann["area"]):
            crash.append(_coco_crash(f"{where}.area", f"area is {kind(ann['area'])}, not a number (int() fails)",
                                     described(ann["area"]), COCO_KEYS["area"]))
        iid = ann.get("image_id")
        try:
            known_image = iid in image_ids
        except TypeError:
            known_image = False
        if "image_id" in ann and not known_image:
            drop("no_image", Violation("INF-12", f"image_id {short(iid)} names no entry of images: the annotation is "
                                       "silently dropped", file=RESULT, where=f"{where}.image_id", found=short(iid),
                                       expected="an id from images[]", fix=FIX_COCO, lost=1))
        box = bbox_ints(ann.get("bbox"))
        if box is None:
            drop("bbox", Violation("INF-12", f"bbox is {described(ann.get('bbox'))}, not 4 numbers: the annotation "
                                   "is silently dropped", file=RESULT, where=f"{where}.bbox",
                                   found=described(ann.get("bbox")), expected="[x, y, w, h]", fix=FIX_COCO, lost=1))
        elif box[2] <= 0 or box[3] <= 0:
            drop("zero", Violation("INF-12", f"bbox {short(ann.get('bbox'))} has w or h <= 0 after int(): the "
                                   "annotation is silently dropped", file=RESULT, where=f"{where}.bbox",
                                   found=short(ann.get("bbox")), expected="w >= 1 and h >= 1", fix=FIX_COCO, lost=1))
        seg = ann.get("segmentation")
        problem = ""
        if seg is None or seg == {}:
            problem = ""
        elif isinstance(seg, dict):
            size = image_size.get(iid) if known_image else None
            problem = rle_problem(seg, size, budget)
        elif isinstance(seg, list):
            problem = polygon_problem(seg)
        else:
            problem = f"segmentation is {kind(seg)}: expected an RLE object or a list with one polygon"
        if problem:
            crash.append(_coco_crash(f"{where}.segmentation", problem, short(seg),
                                     'an RLE object {"counts": "<compressed string>", "size": [H, W]} of the image\'s '
                                     'size, or [[x1, y1, x2, y2, ...]]: one polygon of at least 3 points'))
    yield from cap(crash, 10)
    for items in dropped.values():
        first = items[0]
        more = f" ({len(items)} such annotations in all)" if len(items) > 1 else ""
        yield Violation("INF-12", first.message + more + _loss_note(view), file=RESULT,
                        where=", ".join(v.where for v in items[:5]) + (", ..." if len(items) > 5 else ""),
                        found=first.found, expected=first.expected, fix=first.fix, lost=len(items))


COCO_KEYS = {"image_id": "image_id: the id of an entry of images[]",
             "category_id": "category_id: the id of an entry of categories[]",
             "area": "area: a number (the mask's pixel count)"}


def _coco_crash(where: str, what: str, found: str, expected: str) -> Violation:
    return Violation("INF-12", f"{what}: the platform fails the task or rejects the annotation", file=RESULT,
                     where=where, found=found, expected=expected, fix=FIX_COCO)


@check("INF-13", "COCO categories are named as config class_names; no duplicate annotations", area=Area.INFER,
       levels={"2.1+": Level.SHOULD}, tasks=INFER, object_types=COCO_TYPES)
def inf_13(view: RunView) -> Iterator[Violation]:
    t = coco_tally(view)
    if t is None:
        return
    fix = ("Name categories exactly as /in/config.yaml class_names (category ids may be any consistent numbers; "
           "the platform matches by name, case-insensitively) and write each object once.")
    out = [Violation("INF-13", f"{n} annotation(s) belong to {short(name)}, which is not a category named in config "
                     "class_names: the platform silently drops them" + _loss_note(view), file=RESULT,
                     where="categories", found=short(name), expected=f"one of {short(view.class_names, 200)}",
                     fix=fix, lost=n)
           for name, n in t.unknown_category.most_common()]
    yield from cap(out)
    if t.duplicates:
        yield Violation("INF-13", f"{t.duplicates} annotation(s) repeat the class and bbox of another annotation of the "
                        "same image: the platform de-duplicates them", file=RESULT, where="annotations",
                        found=f"{t.duplicates} duplicates", expected="each object once", fix=fix, lost=t.duplicates)


@check("INF-14", "instance segmentation gives a confidence per instance (key 'confidence', not 'score')",
       area=Area.INFER, levels={"2.1+": Level.SHOULD}, tasks=INFER, object_types=COCO_TYPES)
def inf_14(view: RunView) -> Iterator[Violation]:
    doc = infer_doc(view)
    if doc is None:
        return
    _, _, annotations = coco_lists(doc)
    instance = view.outcome.object_type == ObjectType.INSTANCE_SEGMENTATION
    no_conf: list[int] = []
    score_key: list[int] = []
    per_class: Counter[tuple[str, str]] = Counter()
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            continue
        if "score" in ann and "confidence" not in ann:
            score_key.append(i)
        elif instance and not is_number(ann.get("confidence")):
            no_conf.append(i)
        per_class[(short(ann.get("image_id")), short(ann.get("category_id")))] += 1
    if score_key:
        yield Violation("INF-14", f"{len(score_key)} annotation(s) carry 'score' but no 'confidence': the platform reads "
                        "only 'confidence' and stores -1", file=RESULT, where=f"annotations[{score_key[0]}].score",
                        found="score", expected="confidence: float in [0, 1]",
                        fix="Rename the key 'score' to 'confidence' in every COCO annotation.")
    if no_conf:
        yield Violation("INF-14", f"{len(no_conf)} instance annotation(s) have no numeric confidence: the platform "
                        "stores -1, so the UI cannot filter or rank instances",
                        file=RESULT, where=f"annotations[{no_conf[0]}].confidence", found="no confidence",
                        expected="confidence: float in [0, 1]",
                        fix="Write the instance's score as 'confidence' (a float in [0, 1]) in every annotation.")
    if view.outcome.object_type == ObjectType.SEMANTIC_SEGMENTATION:
        multi = [(k, n) for k, n in per_class.items() if n > 1]
        if multi:
            (img, cat), n = multi[0]
            yield Violation("INF-14", f"{len(multi)} (image, class) pair(s) have several annotations in a semantic "
                            f"segmentation result (e.g. image_id {img}, category_id {cat}: {n})", file=RESULT,
                            where="annotations", found=f"{n} annotations for one class of one image",
                            expected="one annotation (one mask) per class per image",
                            fix="For semantic segmentation merge all pixels of a class into one mask and write one "
                                "annotation per class per image, without confidence.")

