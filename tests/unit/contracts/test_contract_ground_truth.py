"""IN-03: infer results checked against what is really in the candidate images (ground-truth.json beside in/)."""
from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from contract_kit import Kit, KitFactory
from ymir_conformance.contracts import REGISTRY, Level, Status
from ymir_conformance.contracts.base import Area, RunView
from ymir_conformance.contracts.ground_truth import (
    MIN_MOVED_MATCHES,
    Analysis,
    analyse,
    best_mapping,
    iou,
)
from ymir_conformance.model import ObjectType, Task

CLASSES = ["person", "cat", "dog"]  # as the suite's workspaces: deliberately not alphabetical
SWAP = {"cat": "person", "person": "cat"}
SORTED = {c: s for c, s in zip(CLASSES, sorted(CLASSES))}  # index k named sorted(class_names)[k]
Truth = dict[str, list[tuple[str, list[int]]]]


def setup(kit: Kit, per_image: int = 6, classes: list[str] | None = None, cycle: list[str] | None = None) -> Truth:
    """Give the kit 3-class config.yaml and a ground-truth.json: ``per_image`` (<= 16) objects per candidate on
    a 4 x 4 grid of 8 x 6 px boxes inside the smallest image (40 x 30), classes cycling through ``cycle``."""
    cfg = yaml.safe_load((kit.in_dir / "config.yaml").read_text())
    cfg["class_names"] = list(classes or CLASSES)
    (kit.in_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    names = cycle or CLASSES
    truth: Truth = {}
    k = 0
    for b in kit.basenames:
        objs = []
        for j in range(per_image):
            objs.append((names[k % len(names)], [1 + 9 * (j % 4), 1 + 7 * (j // 4), 8, 6]))
            k += 1
        truth[b] = objs
    doc = {b: {"width": kit.sizes[b][0], "height": kit.sizes[b][1],
               "objects": [{"class_name": n, "box": box} for n, box in objs]} for b, objs in truth.items()}
    (kit.root / "ground-truth.json").write_text(json.dumps(doc))
    return truth


def det(kit: Kit, truth: Truth, name: Callable[[str], str] = lambda n: n, key: Callable[[str], str] = lambda b: b,
        extra: Callable[[str, list[int]], list[dict[str, Any]]] | None = None) -> None:
    """Write a detection infer-result.json predicting every true box (shifted by 1 px) under name(true name)."""
    doc: dict[str, Any] = {"detection": {}}
    for b in kit.basenames:
        boxes = []
        for n, (x, y, w, h) in truth.get(b, []):
            boxes.append({"box": {"x": x + 1, "y": y, "w": w, "h": h}, "class_name": name(n), "score": 0.9})
            boxes += extra(n, [x, y, w, h]) if extra else []
        doc["detection"][key(b)] = {"boxes": boxes}
    kit.infer_json(doc)


def coco(kit: Kit, truth: Truth, name: Callable[[str], str] = lambda n: n) -> None:
    """A COCO infer-result.json predicting every true box; category ids follow CLASSES, names via name()."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, b in enumerate(kit.basenames, start=1):
        w, h = kit.sizes[b]
        images.append({"id": i, "file_name": b, "width": w, "height": h})
        for n, (x, y, bw, bh) in truth.get(b, []):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": 10 + CLASSES.index(n),
                                "bbox": [x + 0.4, y, bw, bh], "area": bw * bh, "iscrowd": 0,
                                "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]], "confidence": 0.8})
    cats = [{"id": 10 + i, "name": name(c)} for i, c in enumerate(CLASSES)]
    kit.infer_json({"images": images, "categories": cats, "annotations": annotations})


def in03(kit: Kit, **kw: Any) -> tuple[Status, list[str]]:
    f = kit.finding("IN-03", **kw)
    return f.status, [v.render() for v in f.violations]


def view(kit: Kit) -> RunView:
    return RunView(kit.outcome())


@pytest.fixture
def infer(make: KitFactory) -> Kit:
    return make("infer")


# ---------------------------------------------------------------------------------------------------------
# The rule's scope
# ---------------------------------------------------------------------------------------------------------


def test_registered_as_infer_must() -> None:
    chk = REGISTRY["IN-03"]
    assert chk.area == Area.INFER and chk.default_level == Level.MUST
    assert chk.tasks == {Task.INFER} and chk.needs_success
    assert chk.object_types == set(ObjectType)


def test_not_applicable_to_mining_only(make: KitFactory) -> None:
    kit = make("mining")
    setup(kit)
    assert kit.finding("IN-03").status == Status.NOT_APPLICABLE


def test_not_evaluated_when_the_run_failed(infer: Kit) -> None:
    det(infer, setup(infer), name=lambda n: SWAP.get(n, n))
    assert infer.finding("IN-03", exit_code=1).status == Status.NOT_EVALUATED


# ---------------------------------------------------------------------------------------------------------
# Correct and mis-mapped labels
# ---------------------------------------------------------------------------------------------------------


def test_correct_labels_pass(infer: Kit) -> None:
    det(infer, setup(infer))
    assert in03(infer) == (Status.PASSED, [])
    a = analyse(view(infer))
    assert a is not None and a.matches == 18 and a.identity_agreement == 18 and a.mapping == [0, 1, 2]
    assert infer.failed() == set()


def test_swapped_cat_person_fails_naming_the_mapping(infer: Kit) -> None:
    det(infer, setup(infer), name=lambda n: SWAP.get(n, n))
    status, lines = in03(infer)
    assert status == Status.FAILED and len(lines) == 1
    text = lines[0]
    assert "objects that are 'cat' are predicted as 'person' (6 of 6)" in text
    assert "objects that are 'person' are predicted as 'cat' (6 of 6)" in text
    assert "'dog' are predicted" not in text  # dog is right: not part of the mapping
    assert "6 carry their true name and 18 would under this re-mapping" in text
    assert "true 'person' -> 'cat' 6; true 'cat' -> 'person' 6; true 'dog' -> 'dog' 6" in text
    assert "class_names[k]" in text and "do not sort" in text and "training-time order" in text
    assert "alphabetical" not in text
    assert infer.failed() == {"IN-03"}


def test_alphabetical_order_fails_and_says_so(infer: Kit) -> None:
    det(infer, setup(infer), name=lambda n: SORTED[n])
    status, lines = in03(infer)
    assert status == Status.FAILED
    assert "objects that are 'person' are predicted as 'cat'" in lines[0]
    assert "objects that are 'cat' are predicted as 'dog'" in lines[0]
    assert "objects that are 'dog' are predicted as 'person'" in lines[0]
    assert "sorted alphabetically, but the model's output order is config order" in lines[0]


def test_trained_alphabetically_named_in_config_order_is_recognised(infer: Kit) -> None:
    inverse = {s: c for c, s in SORTED.items()}
    det(infer, setup(infer), name=lambda n: inverse[n])
    status, lines = in03(infer)
    assert status == Status.FAILED
    assert "trained with class_names sorted alphabetically" in lines[0]


def test_objects_of_unselected_labels_are_not_part_of_the_truth(infer: Kit) -> None:
    """The images hold objects of a label the training did not select (car: in the dataset, not in class_names).
    A model that rightly ignores them is not short of matches; one that calls them by a selected name gets
    unmatched boxes, not a fake mapping; the alphabetical re-ordering is still found among the selected ones."""
    cycle = ["person", "cat", "car", "dog"]
    truth = setup(infer, per_image=8, cycle=cycle)
    selected = {b: [(n, box) for n, box in objs if n != "car"] for b, objs in truth.items()}
    det(infer, selected)
    a = analyse(view(infer))
    assert a is not None and a.matches == a.identity_agreement == 18 and a.true_objects == 18
    assert in03(infer) == (Status.PASSED, [])
    det(infer, {b: [(n if n != "car" else "dog", box) for n, box in objs] for b, objs in truth.items()})
    assert in03(infer) == (Status.PASSED, []) and analyse(view(infer)).matches == 18  # type: ignore[union-attr]
    det(infer, selected, name=lambda n: SORTED[n])
    assert in03(infer)[0] == Status.FAILED


def test_names_are_normalised_and_keys_may_be_paths(infer: Kit) -> None:
    det(infer, setup(infer), name=lambda n: f" {SWAP.get(n, n).upper()} ", key=lambda b: f"/in/assets/xx/{b}")
    assert in03(infer)[0] == Status.FAILED


def test_legacy_annotations_key(make: KitFactory) -> None:
    kit = make("infer", release="1.1")
    truth = setup(kit)
    det(kit, truth, name=lambda n: SWAP.get(n, n))
    doc = json.loads((kit.out_dir / "infer-result.json").read_text())
    for v in doc["detection"].values():
        v["annotations"] = v.pop("boxes")
    kit.infer_json(doc)
    assert in03(kit, release="1.1")[0] == Status.FAILED


def test_a_swap_among_mostly_correct_classes_is_still_found(infer: Kit) -> None:
    """Few dogs and cats, swapped, among many correctly named persons: overall the names are mostly right, but
    the swap is systematic on the classes it moves."""
    cyc = ["person"] * 8 + ["cat", "dog"] * 3
    det(infer, setup(infer, per_image=10, cycle=cyc), name=lambda n: {"cat": "dog", "dog": "cat"}.get(n, n))
    a = analyse(view(infer))
    assert a is not None and a.identity_agreement > a.matches / 2  # identity still explains most matches
    assert in03(infer)[0] == Status.FAILED


def test_low_score_duplicates_of_other_classes_do_not_hide_or_fake_a_mapping(infer: Kit) -> None:
    """A detector with a low threshold also reports each object under the other names with low scores: the
    best-scored prediction of each object is the one matched."""
    def others(n: str, box: list[int]) -> list[dict[str, Any]]:
        x, y, w, h = box
        return [{"box": {"x": x, "y": y, "w": w, "h": h}, "class_name": c, "score": 0.05} for c in CLASSES if c != n]

    truth = setup(infer)
    det(infer, truth, extra=others)
    assert in03(infer) == (Status.PASSED, [])
    det(infer, truth, name=lambda n: SWAP.get(n, n), extra=lambda n, b: others(SWAP.get(n, n), b))
    assert in03(infer)[0] == Status.FAILED


# ---------------------------------------------------------------------------------------------------------
# Weak models, little evidence, no ground truth: nothing to say
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_random_labels_pass(infer: Kit, seed: int) -> None:
    rng = random.Random(seed)
    det(infer, setup(infer, per_image=10), name=lambda n: rng.choice(CLASSES))
    assert in03(infer) == (Status.PASSED, [])


def test_everything_called_one_name_passes(infer: Kit) -> None:
    det(infer, setup(infer, per_image=8), name=lambda n: "person")
    assert in03(infer) == (Status.PASSED, [])


def test_one_class_confused_with_another_passes(infer: Kit) -> None:
    """Cats called dogs while dogs are right is a weak model, not a re-ordered class_names (not a bijection)."""
    cyc = ["cat"] * 3 + ["dog", "person"]
    det(infer, setup(infer, per_image=8, cycle=cyc), name=lambda n: "dog" if n == "cat" else n)
    a = analyse(view(infer))
    assert a is not None and a.counts[(1, 2)] > a.counts[(2, 2)]  # more cats-as-dogs than dogs
    assert in03(infer) == (Status.PASSED, [])


def test_few_matches_pass(infer: Kit) -> None:
    det(infer, setup(infer, per_image=2), name=lambda n: SWAP.get(n, n))  # 6 objects, 4 of them swapped
    assert in03(infer) == (Status.PASSED, [])


def test_boxes_that_miss_the_objects_pass(infer: Kit) -> None:
    truth = setup(infer)
    far = {b: [(n, [x + 6, y + 5, w, h]) for n, (x, y, w, h) in objs] for b, objs in truth.items()}  # IoU < 0.5
    det(infer, far, name=lambda n: SWAP.get(n, n))
    a = analyse(view(infer))
    assert a is not None and a.matches == 0
    assert in03(infer) == (Status.PASSED, [])


def test_threshold_on_moved_matches() -> None:
    """A perfect swap moving MIN_MOVED_MATCHES - 1 objects is not enough evidence; one more is."""
    a = Analysis(["a", "b", "c"], counts=Counter({(0, 1): 5, (1, 0): MIN_MOVED_MATCHES - 6, (2, 2): 10}))
    a.mapping = best_mapping(a.counts, 3)
    assert a.mapping == [1, 0, 2] and a.moved_matches == MIN_MOVED_MATCHES - 1 and not a.systematic
    a.counts[(1, 0)] += 1
    assert a.moved_matches == MIN_MOVED_MATCHES and a.systematic and a.chance < 1e-5


def test_a_mapping_followed_too_loosely_passes() -> None:
    """80% of the moved objects must follow the re-mapping, and every moved class with 3+ matches 60%."""
    a = Analysis(["a", "b", "c"], counts=Counter({(0, 1): 16, (0, 0): 4, (1, 0): 16, (1, 2): 4, (2, 2): 10}))
    a.mapping = best_mapping(a.counts, 3)
    assert a.mapping == [1, 0, 2] and a.moved_remap_share == 0.8 and a.systematic
    a.counts[(1, 2)] += 1
    assert a.moved_remap_share < 0.8 and not a.systematic
    b = Analysis(["a", "b", "c"], counts=Counter({(0, 1): 20, (1, 0): 2, (1, 1): 2}))
    b.mapping = best_mapping(b.counts, 3)
    assert b.mapping == [1, 0, 2] and b.moved_remap_share > 0.8 and not b.systematic  # b: 2 of 4 only


def test_no_ground_truth_yields_nothing(infer: Kit) -> None:
    det(infer, setup(infer), name=lambda n: SWAP.get(n, n))
    (infer.root / "ground-truth.json").unlink()
    assert analyse(view(infer)) is None
    assert in03(infer) == (Status.PASSED, [])


@pytest.mark.parametrize("text", ["{not json", "[]", "null", '{"x": 1}', '{"person": [1, 2]}',
                                  '{"a.png": {"objects": "x"}}', '{"a.png": {"objects": [{"box": "x"}, 3]}}'])
def test_garbage_ground_truth_yields_nothing(infer: Kit, text: str) -> None:
    det(infer, setup(infer), name=lambda n: SWAP.get(n, n))
    (infer.root / "ground-truth.json").write_text(text)
    assert in03(infer) == (Status.PASSED, [])


GARBAGE = [
    "{not json", "", "[1, 2]", "null", '{"detection": 3}', '{"detection": {"a": 1}}', '{"detection": {"a": {"boxes": 1}}}',
    '{"detection": {"a": {"boxes": [1, null, "x", {"box": 1}, {"box": {"x": "1"}, "class_name": 2}]}}}',
    '{"images": 1, "categories": 2, "annotations": 3}',
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_infer_result_yields_nothing_from_this_check(infer: Kit, text: str) -> None:
    setup(infer)
    infer.infer_json(text)
    assert in03(infer) == (Status.PASSED, [])


def test_unusable_boxes_are_skipped_not_reported(infer: Kit) -> None:
    """Float, string, huge, bool or missing coordinates and unknown names are other checks' business; with
    them skipped, what is left still shows the swap."""
    truth = setup(infer, per_image=8)
    bad_boxes = [{"x": 1.5, "y": 1, "w": 10, "h": 8}, {"x": "1", "y": 1, "w": 10, "h": 8}, {"x": 1, "y": 1, "w": 10},
                 {"x": True, "y": 1, "w": 10, "h": 8}, {"x": 2 ** 40, "y": 1, "w": 10, "h": 8},
                 {"x": 1, "y": 1, "w": 0, "h": 8}, [1, 1, 10, 8], None]

    def junk(n: str, box: list[int]) -> list[dict[str, Any]]:
        return [{"box": b, "class_name": "cat", "score": 1.0} for b in bad_boxes] + [
            {"box": {"x": box[0], "y": box[1], "w": box[2], "h": box[3]}, "class_name": c, "score": 1.0}
            for c in ("zebra", "", None, 7)]

    det(infer, truth, name=lambda n: SWAP.get(n, n), extra=junk)
    assert in03(infer)[0] == Status.FAILED
    a = analyse(view(infer))
    assert a is not None and a.matches == 24


# ---------------------------------------------------------------------------------------------------------
# COCO results (segmentation, multi-modal)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", [ObjectType.INSTANCE_SEGMENTATION, ObjectType.SEMANTIC_SEGMENTATION,
                                         ObjectType.MULTI_MODAL])
def test_coco_correct_and_swapped(make: KitFactory, object_type: ObjectType) -> None:
    kit = make("infer", object_type)
    truth = setup(kit)
    coco(kit, truth)
    assert in03(kit) == (Status.PASSED, [])
    coco(kit, truth, name=lambda n: SWAP.get(n, n))
    status, lines = in03(kit)
    assert status == Status.FAILED
    assert "objects that are 'cat' are predicted as 'person' (6 of 6)" in lines[0]
    assert "categories[*].name" in lines[0]


def test_coco_file_names_with_paths_are_taken_by_basename(make: KitFactory) -> None:
    kit = make("infer", ObjectType.INSTANCE_SEGMENTATION)
    coco(kit, setup(kit), name=lambda n: SWAP.get(n, n))
    doc = json.loads((kit.out_dir / "infer-result.json").read_text())
    for im in doc["images"]:
        im["file_name"] = "/in/assets/xx/" + im["file_name"]
    kit.infer_json(doc)
    assert in03(kit)[0] == Status.FAILED


def test_coco_garbage_yields_nothing(make: KitFactory) -> None:
    kit = make("infer", ObjectType.INSTANCE_SEGMENTATION)
    setup(kit)
    kit.infer_json({"images": [{"id": [1], "file_name": 3}, {"id": 1, "file_name": "a"}],
                    "categories": [{"id": {}, "name": "cat"}, {"id": 1, "name": 5}],
                    "annotations": [{"image_id": [], "category_id": 1, "bbox": [1, 2, 3]}, 7,
                                    {"image_id": 1, "category_id": 1, "bbox": ["a", 1, 1, 1]},
                                    {"image_id": 1, "category_id": 1, "bbox": [float("nan"), 1, 1, 1]}]})
    assert in03(kit) == (Status.PASSED, [])


# ---------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_best_mapping_is_exact_and_prefers_identity_on_ties() -> None:
    assert best_mapping(Counter({(0, 0): 3, (0, 1): 3, (1, 0): 3, (1, 1): 3}), 2) == [0, 1]
    assert best_mapping(Counter({(0, 1): 5, (1, 2): 5, (2, 0): 5}), 4) == [1, 2, 0, 3]
    # greedy would take (0, 0) = 6 first and end with 6 + 1; the best is 5 + 5
    assert best_mapping(Counter({(0, 0): 6, (0, 1): 5, (1, 0): 5, (1, 1): 1}), 2) == [1, 0]
    assert best_mapping(Counter(), 3) == [0, 1, 2]


def test_many_classes_do_not_blow_up() -> None:
    k = 30
    counts = Counter({(i, (i + 1) % k): 4 for i in range(k)})
    mapping = best_mapping(counts, k)
    assert mapping == [(i + 1) % k for i in range(k)]
