"""INF-01..INF-08 (detection) and INF-10..INF-14 (COCO), with the silent-loss counts."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from contract_kit import KitFactory, Kit
from ymir_conformance.contracts import Level, Status
from ymir_conformance.model import ObjectType

SEMSEG, INSTSEG = ObjectType.SEMANTIC_SEGMENTATION, ObjectType.INSTANCE_SEGMENTATION


def doc(kit: Kit) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((kit.out_dir / "infer-result.json").read_text())
    return value


def first_boxes(d: dict[str, Any]) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = next(iter(d["detection"].values()))["boxes"]
    return boxes


# -- detection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"boxes": {}}', '{"detection": []}'])
def test_inf01_owner(make: KitFactory, content: str) -> None:
    kit = make("infer")
    kit.infer_json(content)
    assert kit.failed() == {"INF-01"}


def test_inf01_missing(make: KitFactory) -> None:
    kit = make("infer")
    (kit.out_dir / "infer-result.json").unlink()
    assert kit.failed() == {"INF-01"}
    assert "169999" in kit.violations("INF-01")[0].message


def test_inf02_full_path_keys(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    d["detection"] = {c: d["detection"][b] for c, b in zip(kit.candidates, kit.basenames)}
    kit.infer_json(d)
    assert kit.failed() == {"INF-02"}
    assert kit.finding("INF-02").level == Level.SHOULD


def test_inf03_value_not_an_object(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    d["detection"][kit.basenames[0]] = []
    kit.infer_json(d)
    assert kit.failed() == {"INF-03"}
    d["detection"][kit.basenames[0]] = {"boxes": "none"}
    kit.infer_json(d)
    assert kit.failed() == {"INF-03"}


def test_inf03_boxes_key_on_1_1(make: KitFactory) -> None:
    kit = make("infer", release="2.5")  # 'boxes'
    assert kit.failed("1.1") == {"INF-03"}
    assert "annotations" in kit.violations("INF-03", "1.1")[0].message


@pytest.mark.parametrize("mutate", [
    lambda b: b["box"].update(x=12.5),
    lambda b: b["box"].update(xmin=1),
    lambda b: b.pop("class_name"),
    lambda b: b.update(class_name="  "),
    lambda b: b.pop("box"),
    lambda b: b["box"].update(w=True),
])
def test_inf04_crashing_boxes(make: KitFactory, mutate: Any) -> None:
    kit = make("infer")
    d = doc(kit)
    mutate(first_boxes(d)[0])
    kit.infer_json(d)
    assert kit.failed() == {"INF-04"}
    for v in kit.violations("INF-04"):  # an expectation, not a pointer to the fix
        assert v.expected and "in the fix" not in v.expected


def test_inf04_integral_float_and_numeric_string_coords_are_accepted(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    first_boxes(d)[0]["box"].update(x=1.0, y="2")
    kit.infer_json(d)
    assert kit.failed() == set()


def test_inf04_missing_score_drop_vs_crash(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    for entry in d["detection"].values():
        entry["boxes"][0].pop("score")
    kit.infer_json(d)
    assert kit.failed("2.5") == {"INF-04"}
    (v,) = kit.violations("INF-04", "2.5")
    assert v.lost == 3 and "drop" in v.message and v.level == Level.MUST
    assert kit.failed("2.0") == {"INF-04"}
    (v,) = kit.violations("INF-04", "2.0")
    assert v.lost is None and "crash" in v.message


def test_inf04_rotate_angle_only_on_1_1(make: KitFactory) -> None:
    kit = make("infer", release="1.1")
    d = doc(kit)
    d["detection"][kit.basenames[0]]["annotations"][0]["box"]["rotate_angle"] = 0.0
    kit.infer_json(d)
    assert kit.failed("1.1") == {"INF-04"}
    assert "rotate_angle" in kit.violations("INF-04", "1.1")[0].message
    d = doc(kit)
    for e in d["detection"].values():
        e["boxes"] = e.pop("annotations")
    kit.infer_json(d)
    assert kit.failed("2.5") == set()


def test_inf05_unknown_class_is_lost(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    for e in d["detection"].values():
        e["boxes"][1]["class_name"] = "person"
    first_boxes(d)[0]["class_name"] = " CAT "  # matched case-insensitively, stripped
    kit.infer_json(d)
    assert kit.failed() == {"INF-05"}
    (v,) = kit.violations("INF-05")
    assert v.lost == 3 and "person" in v.found


def test_inf06_outside_and_scores(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    first_boxes(d)[0]["box"].update(x=60, w=30)  # image is 64 wide
    kit.infer_json(d)
    assert kit.failed() == {"INF-06"}
    d = doc(kit)
    first_boxes(d)[0]["box"].update(x=1, w=10)
    first_boxes(d)[0]["score"] = 1.5
    kit.infer_json(d)
    assert kit.failed() == {"INF-06"}
    first_boxes(d)[0].update(score=0.5, box={"x": 1, "y": 1, "w": 0, "h": 5})
    kit.infer_json(d)
    assert kit.failed() == {"INF-06"}


def test_inf07_fifty_boxes_on_2_0(make: KitFactory) -> None:
    kit = make("infer", release="2.0")
    d = doc(kit)
    d["detection"][kit.basenames[2]]["boxes"] = [
        {"box": {"x": 1, "y": 1, "w": 5, "h": 5}, "class_name": "cat", "score": i / 100} for i in range(60)]
    kit.infer_json(d)
    assert kit.failed("2.0") == {"INF-07"}
    assert kit.violations("INF-07", "2.0")[0].lost == 10
    assert kit.finding("INF-07", "2.5").status == Status.NOT_APPLICABLE
    assert kit.failed("2.5") == set()


def test_inf08_missing_and_foreign_keys(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    d["detection"].pop(kit.basenames[0])
    d["detection"]["cat.jpg"] = {"boxes": first_boxes(d)}
    kit.infer_json(d)
    assert kit.failed() == {"INF-08"}
    vs = kit.violations("INF-08")
    assert [v.lost for v in vs] == [2, None]


def test_combined_run_notes_topk(make: KitFactory) -> None:
    kit = make("mining+infer")
    d = doc(kit)
    d["detection"].pop(kit.basenames[0])
    kit.infer_json(d)
    assert kit.failed() == {"INF-08"}
    (v,) = kit.violations("INF-08")
    assert "loses nothing" in v.message and v.lost is None


def test_combined_run_summaries(make: KitFactory) -> None:
    from ymir_conformance.contracts.base import RunView
    from ymir_conformance.contracts.silent_loss import summaries

    kit = make("mining+infer")
    d = doc(kit)
    first_boxes(d)[0]["class_name"] = "person"
    kit.infer_json(d)
    lines = summaries(RunView(kit.outcome()))
    assert len(lines) == 2 and "1 silently dropped" in lines[0] and "top-k" in lines[0]
    assert lines[1].startswith("result.tsv: 3 lines")


# -- COCO -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "{", "[]", '{"images": [], "categories": []}', '{"detection": {}}'])
def test_inf10_owner(make: KitFactory, content: str) -> None:
    kit = make("infer", INSTSEG)
    kit.infer_json(content)
    assert kit.failed() == {"INF-10"}


def test_inf10_not_a_list_and_empty_images(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    d["annotations"] = {}
    kit.infer_json(d)
    assert kit.failed() == {"INF-10"}
    d = doc(kit)
    d = {"images": [], "categories": d["categories"], "annotations": []}
    kit.infer_json(d)
    assert kit.failed("2.3") == {"INF-10"}
    assert "INF-10" not in kit.failed("2.5")


def test_inf11_file_name_with_directory_loses_annotations(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    d["images"][0]["file_name"] = kit.candidates[0]
    kit.infer_json(d)
    assert kit.failed() == {"INF-11"}
    (v,) = kit.violations("INF-11")
    assert v.lost == 2 and v.level == Level.MUST


def test_inf04_expected_names_the_integer(make: KitFactory) -> None:
    kit = make("infer")
    d = doc(kit)
    first_boxes(d)[0]["box"].update(x=12.5)
    kit.infer_json(d)
    (v,) = kit.violations("INF-04")
    assert v.found == "12.5" or "12.5" in v.found
    assert v.expected == "an integer, e.g. 12"


def test_inf12_rle_counts_list_crashes(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    d["annotations"][0]["segmentation"]["counts"] = [0, 5, 10]
    kit.infer_json(d)
    assert kit.failed() == {"INF-12"}


@pytest.mark.parametrize("mutate", [
    lambda a: a.update(segmentation=[[1, 1, 5, 1, 5, 5], [1, 1, 2, 2, 3, 1]]),
    lambda a: a.update(segmentation=[]),
    lambda a: a.pop("area"),
    lambda a: a.pop("image_id"),
    lambda a: a["segmentation"].update(counts="!!!!"),
    lambda a: a["segmentation"].update(size=[10, 10]),
    lambda a: a["segmentation"].update(counts=a["segmentation"]["counts"][:-1]),
])
def test_inf12_annotation_schema(make: KitFactory, mutate: Any) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    mutate(d["annotations"][0])
    kit.infer_json(d)
    assert kit.failed() == {"INF-12"}
    for v in kit.violations("INF-12"):  # an expectation, not a pointer to the fix
        assert v.expected and "in the fix" not in v.expected


def test_inf12_one_polygon_is_fine(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    d["annotations"][0]["segmentation"] = [[1, 1, 5, 1, 5, 5]]
    kit.infer_json(d)
    assert kit.failed() == set()


def test_inf12_bad_bbox_is_dropped_with_count(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    d["annotations"][0]["bbox"] = [1, 2, 3]
    d["annotations"][1]["bbox"] = [1, 2, 0.5, 3]
    kit.infer_json(d)
    assert kit.failed() == {"INF-12"}
    assert sorted(v.lost or 0 for v in kit.violations("INF-12")) == [1, 1]


def test_inf13_unknown_category(make: KitFactory) -> None:
    kit = make("infer", SEMSEG)
    d = doc(kit)
    d["categories"][1]["name"] = "horse"
    kit.infer_json(d)
    assert kit.failed() == {"INF-13"}
    assert kit.violations("INF-13")[0].lost == 3


def test_inf14_confidence(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    d = doc(kit)
    for a in d["annotations"]:
        a["score"] = a.pop("confidence")
    kit.infer_json(d)
    assert kit.failed() == {"INF-14"}
    for a in d["annotations"]:
        a.pop("score")
    kit.infer_json(d)
    assert kit.failed() == {"INF-14"}


def test_coco_checks_do_not_exist_before_2_1(make: KitFactory) -> None:
    kit = make("infer", INSTSEG)
    kit.infer_json("garbage")
    assert kit.failed("2.0") == set()
    assert kit.finding("INF-10", "2.0").status == Status.NOT_APPLICABLE
    assert kit.finding("INF-01", "2.5").status == Status.NOT_APPLICABLE  # detection rule, COCO type


def test_rle_decoder_matches_pycocotools() -> None:
    import pycocotools.mask as mask_util

    from ymir_conformance.contracts.infer import rle_counts

    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random((17, 23)) > 0.6).astype(np.uint8)
        counts = mask_util.encode(np.asfortranarray(m))["counts"].decode("ascii")
        runs = rle_counts(counts)
        assert isinstance(runs, list) and sum(runs) == 17 * 23


# -- a model registered with the wrong object type on 2.1-2.3 (TR-12 downstream) -------------------------------


@pytest.mark.parametrize("shape", ["infer", "mining+infer"])
def test_seg_model_registered_as_detection_fails_infer_on_2_1_to_2_3(make: KitFactory, shape: str) -> None:
    """Its training result.yaml had no object_type: 2.1-2.3 register the model as detection and reject its
    (valid) COCO infer result with 160010; 2.4+ take the type from the task."""
    kit = make(shape, object_type=SEMSEG, release="2.3")
    assert "INF-10" not in kit.failed("2.3")  # a conformant COCO result, model type unknown
    for release in ("2.1", "2.2", "2.3"):
        finding = kit.finding("INF-10", release, model_object_type=2)
        assert finding.status is Status.FAILED and finding.level is Level.MUST
        [v] = finding.violations
        assert v.message.startswith("TR-12") and "160010" in v.message and "object_type: 3" in v.fix
    assert "INF-10" not in kit.failed("2.5", model_object_type=2)
    assert "INF-10" not in kit.failed("2.3", model_object_type=3)


def test_detection_model_registered_as_segmentation_fails_infer_on_2_3(make: KitFactory) -> None:
    kit = make("infer", release="2.3")
    assert kit.failed("2.3", model_object_type=2) == set()
    [v] = kit.violations("INF-01", "2.3", model_object_type=3)
    assert "TR-12" in v.message and "images" in v.message
    assert kit.failed("2.4", model_object_type=3) == set()


def test_inf03_fix_on_1_1_says_annotations(make: KitFactory) -> None:
    kit = make("infer", release="1.1")
    d = doc(kit)
    key = next(iter(d["detection"]))
    d["detection"][key] = {"boxes": d["detection"][key].get("annotations", [])}
    kit.infer_json(d)
    [v] = kit.violations("INF-03", "1.1")
    assert '"annotations"' in v.fix and "not \"boxes\"" in v.fix
    assert kit.violations("INF-03", "2.5") == []  # 2.x read boxes
