"""Infer results against what is really in the candidate images (contract §3.3 IN-03, §4, §5.4).

The suite knows the objects it drew into every candidate image (``RunView.ground_truth``, kept beside ``in/``
and never shown to the image). IN-03 asks the image to name model output index ``k`` ``class_names[k]``, in
the order of config.yaml. An image that sorts ``class_names``, keeps its own order, or uses one order when
training and another when inferring names every object consistently *wrong*: objects of one class come out
under another class's name. The workspace's default ``class_names`` are deliberately not alphabetical
(``person, cat, dog``) so that sorting shows. The images also hold objects of a label the training did not
select (``workspace.LABEL_NAMES``): not in class_names, they are left out of the truth, and a box on one matches
nothing.

How the check decides, without mistaking a weak model for a mapping error:

1. Every predicted box (detection ``boxes``, or COCO ``annotations[].bbox``) whose image, box and name are
   usable is matched to the ground truth of its image the way COCO evaluation does, class-agnostically:
   predictions in order of score, best first, each to the unmatched true object of highest IoU, if that IoU
   is at least ``IOU_MIN``. Unknown names (INF-05) and unusable entries (INF-04, INF-12) are left out: their
   own checks report them.
2. The matches give confusion counts *true class -> predicted class*. The bijection of ``class_names`` onto
   itself that explains most matches is found exactly (identity wins ties).
3. IN-03 fails only when that bijection is not the identity and the evidence is systematic, on the classes it
   moves: at least ``MIN_MOVED_MATCHES`` matched objects of moved classes; at least two moved classes with
   ``MIN_CLASS_MATCHES`` matches or more, each of which goes to its new name at least ``MIN_CLASS_SHARE`` of
   the time; pooled over the moved classes, the new names hold for at least ``MIN_REMAP_SHARE`` of the
   matches and the names as written for less than ``MAX_IDENTITY_SHARE``; and labels drawn independently of
   the objects (with the observed label frequencies) would fit some re-mapping that well with a chance of at
   most ``MAX_CHANCE`` (:attr:`Analysis.chance`, a Hoeffding bound with a Bonferroni factor).

A model that labels at random, one that calls everything by one name, or one that confuses one class with
another (two classes onto one name: not a bijection) does not meet 3; neither do runs with few matches. In
simulation, random labels (uniform or skewed, 2-4 classes, 10-60 matches) trigger it in under 0.1% of runs,
while a sorted class_names with a model as good as the reference is found in 93% of runs with 12 matches
and 99% with 15 (the reference matches 15-30 objects on the quick profile, 12 candidates, seeds 0-9). When
the suite did not build the workspace there is no ground truth and the check yields nothing; it never reports
format problems (INF-01..INF-14 own the file).
"""
from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model import ObjectType, Task
from ._values import as_float, is_hashable
from .base import Area, Level, RunView, Violation, check, short
from .silent_loss import box_list, coco_lists, det_detection, infer_doc, norm_class

RULE = "IN-03"
RESULT = "/out/infer-result.json"

IOU_MIN = 0.5  # a prediction and a true object are the same object at IoU >= 0.5 (PASCAL VOC / COCO AP50)
MIN_MOVED_MATCHES = 10  # matched objects of the classes the re-mapping moves
MIN_CLASS_MATCHES = 3  # a moved class counts as evidence with at least this many matches
MIN_EVIDENCE_CLASSES = 2  # ...and at least two moved classes must be evidence (a swap needs two sides)
MIN_CLASS_SHARE = 0.6  # each evidence class goes to its new name at least this often
MIN_REMAP_SHARE = 0.8  # pooled over the moved classes, the new names hold this often
MAX_IDENTITY_SHARE = 0.5  # ... and the names as written hold less often than this
MAX_CHANCE = 1e-3  # labels unrelated to the objects would fit some re-mapping this well with at most this chance
EXACT_ASSIGNMENT_MAX = 12  # classes involved, up to which the best bijection is found exactly (bitmask DP)
MAX_COORD = 2 ** 31

FIX = ("Index k of the model output is class_names[k] in config.yaml order: do not sort or re-order class_names, "
       "and keep the training-time order for mining/infer (it comes from the model's config, the class_names "
       "that training wrote beside the weights).")


@dataclass(frozen=True)
class _Pred:
    cls: int
    box: tuple[int, int, int, int]
    score: float
    order: int  # position in the file, for a stable order among equal scores


@dataclass
class Analysis:
    """The confusion of true and predicted classes over the matched objects of one infer result."""

    classes: list[str]
    counts: Counter[tuple[int, int]] = field(default_factory=Counter)  # (true, predicted) -> matches
    true_objects: int = 0  # true objects of known classes in images the result covers
    predictions: int = 0  # usable predictions of known classes
    mapping: list[int] = field(default_factory=list)  # best bijection: true class index -> predicted index

    @property
    def matches(self) -> int:
        return sum(self.counts.values())

    def row(self, c: int) -> int:
        return sum(n for (t, _), n in self.counts.items() if t == c)

    @property
    def identity_agreement(self) -> int:
        return sum(n for (t, p), n in self.counts.items() if t == p)

    @property
    def mapping_agreement(self) -> int:
        return sum(self.counts[(c, self.mapping[c])] for c in range(len(self.classes)))

    @property
    def moved(self) -> list[int]:
        return [c for c, p in enumerate(self.mapping) if p != c]

    def share(self, c: int) -> float:
        n = self.row(c)
        return self.counts[(c, self.mapping[c])] / n if n else 0.0

    @property
    def evidence(self) -> list[int]:
        return [c for c in self.moved if self.row(c) >= MIN_CLASS_MATCHES]

    @property
    def moved_matches(self) -> int:
        return sum(self.row(c) for c in self.moved)

    @property
    def moved_remap_share(self) -> float:
        n = self.moved_matches
        return sum(self.counts[(c, self.mapping[c])] for c in self.moved) / n if n else 0.0

    @property
    def moved_identity_share(self) -> float:
        n = self.moved_matches
        return sum(self.counts[(c, c)] for c in self.moved) / n if n else 0.0

    @property
    def chance(self) -> float:
        """An upper bound on the chance that predicted labels drawn independently of the true objects (with the
        label frequencies observed) fit the re-mapping on its moved classes this well, for the best of all
        re-mappings of the classes involved: Hoeffding's bound exp(-n KL(agreement || expected)) for a sum of
        independent Bernoulli trials, times the number of non-identity bijections (Bonferroni)."""
        n_all, n = self.matches, self.moved_matches
        if not n or not n_all:
            return 1.0
        label = Counter[int]()
        for (_, p), k in self.counts.items():
            label[p] += k
        expected = sum(self.row(c) * label[self.mapping[c]] for c in self.moved) / (n * n_all)
        x = self.moved_remap_share
        if x <= expected:
            return 1.0
        if expected <= 0.0:
            return 0.0
        kl = x * math.log(x / expected) + ((1 - x) * math.log((1 - x) / (1 - expected)) if x < 1 else 0.0)
        involved = len({c for pair, k in self.counts.items() if k for c in pair})
        return min(1.0, math.exp(-n * kl) * (math.factorial(min(involved, 20)) - 1))

    @property
    def systematic(self) -> bool:
        """True when the predictions follow a re-ordered class_names (the decision rule of the module doc)."""
        evidence = self.evidence
        return (bool(self.moved) and self.moved_matches >= MIN_MOVED_MATCHES
                and len(evidence) >= MIN_EVIDENCE_CLASSES
                and all(self.share(c) >= MIN_CLASS_SHARE for c in evidence)
                and self.moved_remap_share >= MIN_REMAP_SHARE
                and self.moved_identity_share < MAX_IDENTITY_SHARE
                and self.chance <= MAX_CHANCE)

    def confusion_text(self) -> str:
        parts = []
        for t, name in enumerate(self.classes):
            row = sorted(((n, p) for (tt, p), n in self.counts.items() if tt == t and n), key=lambda x: (-x[0], x[1]))
            if row:
                parts.append(f"true {name!r} -> " + ", ".join(f"{self.classes[p]!r} {n}" for n, p in row))
        return "; ".join(parts)


# --------------------------------------------------------------------------------------------------------
# Reading the ground truth and the predictions (total: malformed entries are skipped)
# --------------------------------------------------------------------------------------------------------


def _int(v: Any) -> int | None:
    """An integer coordinate as protobuf accepts it (ints, integral floats), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -MAX_COORD <= v < MAX_COORD else None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and -MAX_COORD <= v < MAX_COORD:
        return int(v)
    return None


def _box(values: Any) -> tuple[int, int, int, int] | None:
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        return None
    ints = [_int(v) for v in values]
    x, y, w, h = ints
    if x is None or y is None or w is None or h is None or w <= 0 or h <= 0:
        return None
    return x, y, w, h


def _coco_box(values: Any) -> tuple[int, int, int, int] | None:
    """A COCO bbox as the platform reads it: 4 numbers, truncated with int()."""
    if not isinstance(values, list) or len(values) != 4:
        return None
    ints: list[int] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) >= MAX_COORD:
            return None
        ints.append(int(v))
    return _box(ints)


def _class_index(classes: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, name in enumerate(classes):
        index.setdefault(name, i)
    return index


def _truth(view: RunView, index: dict[str, int]) -> dict[str, list[tuple[int, tuple[int, int, int, int]]]]:
    """basename -> [(class index, box)] of the true objects of known classes."""
    out: dict[str, list[tuple[int, tuple[int, int, int, int]]]] = {}
    for name, entry in view.ground_truth.items():
        if not isinstance(name, str) or not isinstance(entry, dict) or not isinstance(entry.get("objects"), list):
            continue
        objs = out.setdefault(os.path.basename(name), [])
        for obj in entry["objects"]:
            if not isinstance(obj, dict) or not isinstance(obj.get("class_name"), str):
                continue
            cls = index.get(norm_class(obj["class_name"]))
            box = _box(obj.get("box"))
            if cls is not None and box is not None:
                objs.append((cls, box))
    return out


def _score(v: Any) -> float:
    f = as_float(v)
    return f if f is not None and math.isfinite(f) else 0.0


def _det_predictions(view: RunView, index: dict[str, int]) -> dict[str, list[_Pred]]:
    det = det_detection(view)
    out: dict[str, list[_Pred]] = {}
    order = 0
    for key, value in (det or {}).items():
        _, boxes = box_list(value, view.release)
        if not isinstance(boxes, list):
            continue
        preds = out.setdefault(os.path.basename(str(key)), [])
        for b in boxes:
            if not (isinstance(b, dict) and isinstance(b.get("class_name"), str) and isinstance(b.get("box"), dict)):
                continue
            cls = index.get(norm_class(b["class_name"]))
            coords = b["box"]
            box = _box([coords.get(k) for k in ("x", "y", "w", "h")])
            if cls is None or box is None:
                continue
            preds.append(_Pred(cls, box, _score(b.get("score")), order))
            order += 1
    return out


def _coco_predictions(view: RunView, index: dict[str, int]) -> dict[str, list[_Pred]]:
    doc = infer_doc(view)
    if doc is None:
        return {}
    images, categories, annotations = coco_lists(doc)
    image_file: dict[Any, str] = {}
    for im in images:
        if isinstance(im, dict) and is_hashable(im.get("id")) and isinstance(im.get("file_name"), str):
            image_file.setdefault(im["id"], os.path.basename(im["file_name"]))
    cat_class: dict[Any, int | None] = {}
    for cat in categories:
        if isinstance(cat, dict) and is_hashable(cat.get("id")) and isinstance(cat.get("name"), str):
            cat_class.setdefault(cat["id"], index.get(norm_class(cat["name"])))
    out: dict[str, list[_Pred]] = {}
    for order, ann in enumerate(annotations):
        if not (isinstance(ann, dict) and is_hashable(ann.get("image_id")) and is_hashable(ann.get("category_id"))):
            continue
        fname = image_file.get(ann.get("image_id"))
        cls = cat_class.get(ann.get("category_id"))
        box = _coco_box(ann.get("bbox"))
        if fname is None or cls is None or box is None:
            continue
        out.setdefault(fname, []).append(_Pred(cls, box, _score(ann.get("confidence", -1)), order))
    return out


# --------------------------------------------------------------------------------------------------------
# Matching and the best re-mapping
# --------------------------------------------------------------------------------------------------------


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two (x, y, w, h) boxes (the same for inclusive pixel extents and half-open ones)."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match(truth: list[tuple[int, tuple[int, int, int, int]]], preds: list[_Pred]) -> list[tuple[int, int]]:
    """(true class, predicted class) of each match, class-agnostic: predictions by score, best first, each to
    the unmatched true object of highest IoU >= IOU_MIN (COCO's greedy matching)."""
    free = list(range(len(truth)))
    pairs: list[tuple[int, int]] = []
    for p in sorted(preds, key=lambda q: (-q.score, q.order)):
        if not free:
            break
        best, best_iou = -1, IOU_MIN
        for i in free:
            v = iou(truth[i][1], p.box)
            if v >= best_iou and (best < 0 or v > best_iou):
                best, best_iou = i, v
        if best >= 0:
            free.remove(best)
            pairs.append((truth[best][0], p.cls))
    return pairs


def best_mapping(counts: Counter[tuple[int, int]], k: int) -> list[int]:
    """The bijection of range(k) onto itself with the most matches; the identity when it is among the best."""
    identity = list(range(k))
    involved = sorted({c for pair, n in counts.items() if n for c in pair})
    m = len(involved)
    if m < 2:
        return identity
    w = [[counts[(involved[r], involved[c])] for c in range(m)] for r in range(m)]
    if m <= EXACT_ASSIGNMENT_MAX:
        # dp over the set of columns used by rows 0..popcount-1; exact maximum-weight assignment
        full = 1 << m
        dp = [-1] * full
        choice = [-1] * full
        dp[0] = 0
        for mask in range(full):
            if dp[mask] < 0:
                continue
            r = bin(mask).count("1")
            if r >= m:
                continue
            for c in range(m):
                if mask & (1 << c):
                    continue
                nxt = mask | (1 << c)
                val = dp[mask] + w[r][c]
                if val > dp[nxt]:
                    dp[nxt], choice[nxt] = val, c
        cols: list[int] = [0] * m
        mask = full - 1
        for r in range(m - 1, -1, -1):
            c = choice[mask]
            cols[r] = c
            mask ^= 1 << c
    else:  # many classes: greedy, largest cells first; not exact, but never worse than what it keeps
        cols = [-1] * m
        used: set[int] = set()
        for n, r, c in sorted(((w[r][c], r, c) for r in range(m) for c in range(m)), key=lambda x: (-x[0], x[1], x[2])):
            if n and cols[r] < 0 and c not in used:
                cols[r] = c
                used.add(c)
        rest = [c for c in range(m) if c not in used]
        for r in range(m):
            if cols[r] < 0:
                cols[r] = r if r in rest else rest[0]
                rest.remove(cols[r])
    if sum(w[r][cols[r]] for r in range(m)) <= sum(w[r][r] for r in range(m)):
        return identity
    mapping = identity[:]
    for r in range(m):
        mapping[involved[r]] = involved[cols[r]]
    return mapping


def analyse(view: RunView) -> Analysis | None:
    """The confusion of an infer result against the ground truth; None without ground truth or predictions."""
    truth_raw = view.ground_truth
    if not truth_raw:
        return None
    classes: list[str] = []
    for c in view.class_names:
        if norm_class(c) not in classes:
            classes.append(norm_class(c))
    if len(classes) < 2:
        return None
    index = _class_index(classes)
    truth = _truth(view, index)
    preds = (_det_predictions(view, index) if view.outcome.object_type == ObjectType.DETECTION
             else _coco_predictions(view, index))
    if not preds:
        return None
    a = Analysis(classes)
    for name, objs in truth.items():
        if name not in preds:
            continue
        a.true_objects += len(objs)
        a.predictions += len(preds[name])
        a.counts.update(match(objs, preds[name]))
    a.mapping = best_mapping(a.counts, len(classes))
    return a


def _alphabetical_hint(a: Analysis) -> str:
    """Name the cause when the re-mapping is exactly config order <-> alphabetical order."""
    k = len(a.classes)
    order = sorted(range(k), key=lambda i: a.classes[i])  # order[j]: config index of the j-th name alphabetically
    to_sorted = [order[i] for i in range(k)]  # infer names index i (trained as class_names[i]) sorted[i]
    from_sorted = [0] * k
    for i in range(k):
        from_sorted[order[i]] = i  # trained on sorted names, infer names index i class_names[i]
    seen = [c for c in range(k) if a.row(c)]
    for mapping, how in ((to_sorted, "the names are taken from class_names sorted alphabetically, but the model's "
                          "output order is config order"),
                         (from_sorted, "the model was trained with class_names sorted alphabetically, but its output "
                          "is named in config order")):
        if mapping != list(range(k)) and all(a.mapping[c] == mapping[c] for c in seen):
            return f" This is exactly the alphabetical re-ordering: {how}."
    return ""


@check(RULE, "model output indices are named in the order of class_names", area=Area.INFER, level=Level.MUST,
       tasks=[Task.INFER])
def in_03(view: RunView) -> Iterator[Violation]:
    try:
        a = analyse(view)
    except (RecursionError, MemoryError):
        return
    if a is None or not a.systematic:
        return
    moved = [c for c in a.moved if a.row(c)]
    lines = ", ".join(f"objects that are {a.classes[c]!r} are predicted as {a.classes[a.mapping[c]]!r} "
                      f"({a.counts[(c, a.mapping[c])]} of {a.row(c)})" for c in moved)
    message = (f"the predicted class names follow a re-ordered class_names: {lines}. Of the {a.matches} true "
               f"objects matched by a predicted box (IoU >= {IOU_MIN}), {a.identity_agreement} carry their true name "
               f"and {a.mapping_agreement} would under this re-mapping, so the platform stores the objects of these "
               f"classes under wrong labels.{_alphabetical_hint(a)}")
    where = ("detection.*.boxes[*].class_name" if view.outcome.object_type == ObjectType.DETECTION
             else "categories[*].name")
    yield Violation(RULE, message, file=RESULT, where=where,
                    found=f"true -> predicted class: {a.confusion_text()}",
                    expected=f"output index k named class_names[k] of {short(a.classes)}: every matched object "
                             "predicted under its own name", fix=FIX)
