"""Verdict differential: the suite's MUST verdict on a release against the platform's own post-processing.

For each /out tree (hand-built conformant ones, named mutations, and hypothesis-drawn combinations of them), the
platform's code of that release (oracle.py ``judge``: percent_log_util, training._get_model_storage +
models.pack_and_copy_models, infer._process_infer_detbox_result / _process_infer_seg_coco_result,
mining._get_topk_asset_ids) accepts or rejects each part, and the suite judges the same tree with
``ymir_conformance.contracts.judge`` on that release. Per part (the rules the platform enforces there):

* platform rejects  <=>  the suite fails a MUST rule of that part's group;
* platform accepts and loses data (objects dropped, fewer or other assets selected, progress never shown)
  =>  the suite reports a violation (SHOULD or MUST) in that group (contract §10);
* platform accepts and keeps everything  =>  no MUST violation in that group.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "contracts"))
from contract_kit import CLASS_NAMES, SHAPES, T0, Kit, make_kit, rec  # noqa: E402

from ymir_conformance.contracts import Level, Status  # noqa: E402
from ymir_conformance.model import ObjectType  # noqa: E402

from .kit import Oracle, get_oracle  # noqa: E402

pytestmark = pytest.mark.differential

GROUPS = {"monitor": ("MON-",), "training": ("TR-",), "infer": ("INF-",), "mining": ("MIN-",)}
Mutation = Callable[[Kit], None]


# -- mutations of a conformant /out ---------------------------------------------------------------------------

def _result(kit: Kit) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((kit.out_dir / "models/result.yaml").read_text())
    return doc


def _set_result(kit: Kit, doc: dict[str, Any]) -> None:
    kit.result_yaml(doc)


def metric_percent(kit: Kit) -> None:
    doc = _result(kit)
    doc["model_stages"]["epoch20"]["mAP"] = 72.0
    _set_result(kit, doc)


def missing_best_stage(kit: Kit) -> None:
    doc = _result(kit)
    doc["best_stage_name"] = "epoch99"
    _set_result(kit, doc)


def absolute_file_path(kit: Kit) -> None:
    doc = _result(kit)
    doc["model_stages"]["epoch20"]["files"] = ["/out/models/epoch20/epoch20.pt"]
    _set_result(kit, doc)


def missing_model_file(kit: Kit) -> None:
    (kit.out_dir / "models/epoch10/epoch10.pt").unlink()


def no_timestamp(kit: Kit) -> None:
    doc = _result(kit)
    del doc["model_stages"]["epoch10"]["timestamp"]
    _set_result(kit, doc)


def no_result_yaml(kit: Kit) -> None:
    (kit.out_dir / "models/result.yaml").unlink()


def iou_range(kit: Kit) -> None:
    doc = _result(kit)
    doc["evaluate_config"]["iou_thr"] = "0.5:0.95"
    _set_result(kit, doc)


def legacy_result(kit: Kit) -> None:
    kit.write("models/best.pt", b"weights")
    _set_result(kit, {"model": ["best.pt"], "map": 0.8})


def upper_case_counts(kit: Kit) -> None:
    doc = _result(kit)
    doc["model_stages"]["epoch20"].update({"TP": 3, "FP": 1})
    _set_result(kit, doc)


def missing_attachment(kit: Kit) -> None:
    doc = _result(kit)
    doc["attachments"] = {"deploy": ["model.onnx"]}
    _set_result(kit, doc)


def _det(kit: Kit) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((kit.out_dir / "infer-result.json").read_text())
    return doc


def float_box(kit: Kit) -> None:
    doc = _det(kit)
    next(iter(doc["detection"].values()))["boxes"][0]["box"]["x"] = 1.5
    kit.infer_json(doc)


def missing_score(kit: Kit) -> None:
    doc = _det(kit)
    del next(iter(doc["detection"].values()))["boxes"][0]["score"]
    kit.infer_json(doc)


def full_path_keys(kit: Kit) -> None:
    doc = _det(kit)
    doc["detection"] = {f"/in/assets/{k[-6:-4]}/{k}": v for k, v in doc["detection"].items()}
    kit.infer_json(doc)


def no_detection_key(kit: Kit) -> None:
    kit.infer_json({"boxes": []})


def legacy_annotations_key(kit: Kit) -> None:
    doc = _det(kit)
    doc["detection"] = {k: {"annotations": v["boxes"]} for k, v in doc["detection"].items()}
    kit.infer_json(doc)


def unknown_class(kit: Kit) -> None:
    doc = _det(kit)
    next(iter(doc["detection"].values()))["boxes"][0]["class_name"] = "zebra"
    kit.infer_json(doc)


def extra_box_key(kit: Kit) -> None:
    doc = _det(kit)
    next(iter(doc["detection"].values()))["boxes"][0]["box"]["conf"] = 0.5
    kit.infer_json(doc)


def box_value_not_object(kit: Kit) -> None:
    doc = _det(kit)
    first = next(iter(doc["detection"]))
    doc["detection"][first] = doc["detection"][first]["boxes"]
    kit.infer_json(doc)


def _coco(kit: Kit) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((kit.out_dir / "infer-result.json").read_text())
    return doc


def coco_dir_in_file_name(kit: Kit) -> None:
    doc = _coco(kit)
    doc["images"][0]["file_name"] = "/in/assets/" + doc["images"][0]["file_name"]
    kit.infer_json(doc)


def coco_missing_area(kit: Kit) -> None:
    doc = _coco(kit)
    del doc["annotations"][0]["area"]
    kit.infer_json(doc)


def coco_counts_list(kit: Kit) -> None:
    doc = _coco(kit)
    doc["annotations"][0]["segmentation"]["counts"] = [0, 5, 10]
    kit.infer_json(doc)


def coco_one_based_categories(kit: Kit) -> None:
    doc = _coco(kit)
    for c in doc["categories"]:
        c["id"] += 1
    for a in doc["annotations"]:
        a["category_id"] += 1
    kit.infer_json(doc)


def mining_space_separated(kit: Kit) -> None:
    kit.mining_tsv(kit.out_dir.joinpath("result.tsv").read_text().replace("\t", " "))


def mining_unsorted(kit: Kit) -> None:
    lines = kit.out_dir.joinpath("result.tsv").read_text().splitlines(keepends=True)
    kit.mining_tsv("".join(reversed(lines)))


def mining_missing(kit: Kit) -> None:
    (kit.out_dir / "result.tsv").unlink()


def mining_bare_sha1(kit: Kit) -> None:
    text = kit.out_dir.joinpath("result.tsv").read_text()
    kit.mining_tsv("".join(f"{ln.split(chr(9))[0].rsplit('/', 1)[1].split('.')[0]}\t{ln.split(chr(9))[1]}"
                           for ln in text.splitlines(keepends=True)))


def mining_duplicates(kit: Kit) -> None:
    first = kit.out_dir.joinpath("result.tsv").read_text().splitlines(keepends=True)[0]
    kit.mining_tsv(first * 3)


def monitor_spaces(kit: Kit) -> None:
    kit.monitor(rec(1.0, ts=T0 + 9.5).replace("\t", " "))


def monitor_three_fields(kit: Kit) -> None:
    kit.monitor("\t".join(rec(1.0, ts=T0 + 9.5).split("\t")[:3]) + "\n")


def monitor_float_state(kit: Kit) -> None:
    kit.monitor(rec(1.0, ts=T0 + 9.5).replace("\t2\t", "\t2.0\t"))


def monitor_percent_sign(kit: Kit) -> None:
    kit.monitor(rec(1.0, ts=T0 + 9.5).replace("\t1.00\t", "\t100%\t"))


def monitor_appended(kit: Kit) -> None:
    kit.monitor(rec(0.0, state=1, ts=T0 - 5) + rec(0.5, ts=T0 + 5) + rec(1.0, ts=T0 + 9.5))


MUTATIONS: dict[str, dict[str, Mutation]] = {
    "training": {f.__name__: f for f in (metric_percent, missing_best_stage, absolute_file_path, missing_model_file,
                                         no_timestamp, no_result_yaml, iou_range, legacy_result, upper_case_counts,
                                         missing_attachment, monitor_spaces, monitor_appended)},
    "infer": {f.__name__: f for f in (float_box, missing_score, full_path_keys, no_detection_key, legacy_annotations_key,
                                      unknown_class, extra_box_key, box_value_not_object, monitor_three_fields,
                                      monitor_float_state, monitor_percent_sign)},
    "infer-seg": {f.__name__: f for f in (coco_dir_in_file_name, coco_missing_area, coco_counts_list,
                                          coco_one_based_categories)},
    "mining": {f.__name__: f for f in (mining_space_separated, mining_unsorted, mining_missing, mining_bare_sha1,
                                       mining_duplicates, monitor_spaces)},
}
CASES: dict[str, tuple[str, ObjectType]] = {
    "training": ("training", ObjectType.DETECTION),
    "infer": ("infer", ObjectType.DETECTION),
    "infer-seg": ("infer", ObjectType.INSTANCE_SEGMENTATION),
    "mining": ("mining", ObjectType.DETECTION),
}


# -- the comparison ---------------------------------------------------------------------------------------------

def _suite_release(oracle_release: str) -> str:
    return ".".join(oracle_release.split(".")[:2])


def _expected_topk(kit: Kit, topk: int) -> set[str]:
    """The top-k asset ids by the executor's own scores (what the user asked mining for)."""
    scored = []
    for line in kit.candidates:
        scored.append(line)
    path = kit.out_dir / "result.tsv"
    best: list[tuple[float, str]] = []
    if path.exists():
        for ln in path.read_text().splitlines():
            parts = ln.replace(" ", "\t").split("\t")
            try:
                best.append((float(parts[-1]), parts[0].rsplit("/", 1)[-1].split(".")[0]))
            except ValueError:
                continue
    return {sha for _, sha in sorted(best, key=lambda p: -p[0])[:topk]}


def _submitted_objects(kit: Kit) -> int:
    path = kit.out_dir / "infer-result.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    if "detection" in doc and isinstance(doc["detection"], dict):
        return sum(len((v.get("boxes") or v.get("annotations") or [])) if isinstance(v, dict) else 0
                   for v in doc["detection"].values())
    return len(doc.get("annotations", []))


def compare(oracle: Oracle, kit: Kit, case: str, label: str) -> None:
    shape_name, object_type = CASES[case]
    shape = SHAPES[shape_name]
    parts = ["monitor"] + [p for p, on in (("training", shape.run_training), ("infer", shape.run_infer),
                                           ("mining", shape.run_mining)) if on]
    topk = max(1, len(kit.candidates) - 1)
    reply = oracle.call("judge", out_dir=str(kit.out_dir), parts=parts, executor_config={"class_names": CLASS_NAMES},
                        label_names=CLASS_NAMES, object_type=int(object_type), topk=topk)
    findings = kit.judge(_suite_release(oracle.release))
    problems = []
    for part in parts:
        verdict = reply[part]
        if verdict.get("unavailable"):
            continue
        group = [f for f in findings if f.check.rule.startswith(GROUPS[part]) and f.status == Status.FAILED]
        must = sorted(f.check.rule for f in group if f.level == Level.MUST)
        reported = sorted(f"{f.check.rule}:{f.level}" for f in group)
        if not verdict["accepted"]:
            if not must:
                problems.append(f"{part}: platform rejects ({verdict['error']}) but the suite has no MUST violation "
                                f"(reported: {reported or 'nothing'})")
            continue
        loss = ""
        if part == "infer" and verdict["objects"] < _submitted_objects(kit):
            loss = f"{_submitted_objects(kit) - verdict['objects']} object(s) dropped"
        elif part == "mining":
            if set(verdict["selected"]) != _expected_topk(kit, topk):
                loss = f"selected {verdict['selected']} instead of the top {topk} by score"
        elif part == "monitor":
            last = (kit.out_dir / "monitor.txt").read_text().splitlines()[-1].split("\t")
            if len(last) > 2 and abs(float(verdict["percent"]) - float(last[2])) > 1e-6:
                loss = f"platform shows {verdict['percent']}, the executor's latest is {last[2]}"
        if loss and not group:
            problems.append(f"{part}: platform accepts and loses data ({loss}) but the suite reports nothing")
        if not loss and must:
            problems.append(f"{part}: platform accepts and keeps everything but the suite fails MUST {must}")
    assert not problems, f"[{label} on {oracle.release}]\n  " + "\n  ".join(problems)


def _fresh_kit(root: Path, case: str, release: str) -> Kit:
    shape_name, object_type = CASES[case]
    return make_kit(root, SHAPES[shape_name], object_type, release).conformant(release)


@pytest.mark.parametrize("case", list(CASES))
def test_conformant_outputs_agree(oracle_release: str, case: str, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    if oracle.legacy:
        pytest.skip("1.1.0 verdict oracle not wired yet (its post-processing lives in commands/*.py)")
    compare(oracle, _fresh_kit(tmp_path / "kit", case, _suite_release(oracle_release)), case, "conformant")


@pytest.mark.parametrize("case,mutation", [(c, m) for c, ms in MUTATIONS.items() for m in ms])
def test_mutation_verdicts_agree(oracle_release: str, case: str, mutation: str, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    if oracle.legacy:
        pytest.skip("1.1.0 verdict oracle not wired yet (its post-processing lives in commands/*.py)")
    kit = _fresh_kit(tmp_path / "kit", case, _suite_release(oracle_release))
    MUTATIONS[case][mutation](kit)
    compare(oracle, kit, case, mutation)


@pytest.mark.parametrize("case", list(CASES))
def test_drawn_mutation_combinations_agree(oracle_release: str, case: str) -> None:
    """Hypothesis draws pairs of mutations (order matters: a later one may repair or mask an earlier one)."""
    oracle = get_oracle(oracle_release)
    if oracle.legacy:
        pytest.skip("1.1.0 verdict oracle not wired yet")
    names = sorted(MUTATIONS[case])

    @settings(max_examples=8, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    def run(chosen: list[str]) -> None:
        root = Path(tempfile.mkdtemp(prefix="ymir-verdict-"))
        try:
            kit = _fresh_kit(root / "kit", case, _suite_release(oracle_release))
            for name in chosen:
                try:
                    MUTATIONS[case][name](kit)
                except (FileNotFoundError, KeyError, TypeError, StopIteration, AttributeError):
                    pass  # an earlier mutation removed what this one edits
            compare(oracle, kit, case, "+".join(chosen))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()
