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

ymir 1.1.0 (protocol 0.0.0) is judged on its own outputs (result.yaml ``model``/``map``, the ``annotations`` key)
with its own mutation set (MUTATIONS_LEGACY) by training._process_model_storage, infer._process_infer_results +
mining._get_infer_annotations and mining._get_topk_asset_ids; its wheel has no monitor.txt reader, so the monitor
part is not compared there. Only the combinations a release has are generated (``oracle_params``): no skips.
Disagreements that are known suite bugs are ``pending`` entries of allowed.yaml (path ``verdict/<part>``).
"""
from __future__ import annotations

import json
import math
import re
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
from ymir_conformance.model import ObjectType, TaskShape  # noqa: E402
from ymir_conformance.platform import Release  # noqa: E402

from .kit import Diff, Oracle, get_oracle, judge_diffs  # noqa: E402

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


def metric_string(kit: Kit) -> None:
    """A metric as a numeric string: pydantic (ModelStageStorage) coerces it, or refuses it?"""
    doc = _result(kit)
    doc["model_stages"]["epoch20"]["mAP"] = "0.7"
    _set_result(kit, doc)


def eval_config_string(kit: Kit) -> None:
    doc = _result(kit)
    doc["evaluate_config"]["iou_thr"] = "0.5"
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


def _boxes(value: dict[str, Any]) -> list[dict[str, Any]]:
    """An image's box list: ``boxes`` (protocol >= 1.0.0) or ``annotations`` (1.1)."""
    boxes: list[dict[str, Any]] = value["boxes"] if "boxes" in value else value["annotations"]
    return boxes


def float_box(kit: Kit) -> None:
    doc = _det(kit)
    _boxes(next(iter(doc["detection"].values())))[0]["box"]["x"] = 1.5
    kit.infer_json(doc)


def missing_score(kit: Kit) -> None:
    doc = _det(kit)
    del _boxes(next(iter(doc["detection"].values())))[0]["score"]
    kit.infer_json(doc)


def full_path_keys(kit: Kit) -> None:
    doc = _det(kit)
    doc["detection"] = {f"/in/assets/{k[-6:-4]}/{k}": v for k, v in doc["detection"].items()}
    kit.infer_json(doc)


def no_detection_key(kit: Kit) -> None:
    kit.infer_json({"boxes": []})


def legacy_annotations_key(kit: Kit) -> None:
    doc = _det(kit)
    doc["detection"] = {k: {"annotations": _boxes(v)} for k, v in doc["detection"].items()}
    kit.infer_json(doc)


def modern_boxes_key(kit: Kit) -> None:
    """The 2.x key on 1.1 (which reads only ``annotations``)."""
    doc = _det(kit)
    doc["detection"] = {k: {"boxes": _boxes(v)} for k, v in doc["detection"].items()}
    kit.infer_json(doc)


def rotate_angle(kit: Kit) -> None:
    doc = _det(kit)
    _boxes(next(iter(doc["detection"].values())))[0]["box"]["rotate_angle"] = 0.0
    kit.infer_json(doc)


def many_boxes(kit: Kit) -> None:
    """60 boxes on one image: ymir <= 2.0 keep the 50 best (infer._process_infer_results max_boxes), 2.1+ all."""
    doc = _det(kit)
    boxes = _boxes(next(iter(doc["detection"].values())))
    boxes[:] = [{"box": {"x": i, "y": 1, "w": 5, "h": 5}, "class_name": "cat", "score": round(0.99 - i * 0.01, 2)}
                for i in range(60)]
    kit.infer_json(doc)


def unknown_class(kit: Kit) -> None:
    doc = _det(kit)
    _boxes(next(iter(doc["detection"].values())))[0]["class_name"] = "zebra"
    kit.infer_json(doc)


def extra_box_key(kit: Kit) -> None:
    doc = _det(kit)
    _boxes(next(iter(doc["detection"].values())))[0]["box"]["conf"] = 0.5
    kit.infer_json(doc)


def box_value_not_object(kit: Kit) -> None:
    doc = _det(kit)
    first = next(iter(doc["detection"]))
    doc["detection"][first] = _boxes(doc["detection"][first])
    kit.infer_json(doc)


# 1.1 training (protocol 0.0.0: result.yaml `model` + `map`, files flat in /out/models; training._find_models)

def legacy_map_percent(kit: Kit) -> None:
    doc = _result(kit)
    doc["map"] = 72.0
    _set_result(kit, doc)


def legacy_map_missing(kit: Kit) -> None:
    doc = _result(kit)
    del doc["map"]
    _set_result(kit, doc)


def legacy_map_not_number(kit: Kit) -> None:
    doc = _result(kit)
    doc["map"] = "high"
    _set_result(kit, doc)


def legacy_missing_model_file(kit: Kit) -> None:
    (kit.out_dir / "models/best.pt").unlink()


def legacy_absolute_path(kit: Kit) -> None:
    doc = _result(kit)
    doc["model"] = [f"/out/models/{n}" for n in doc["model"]]
    _set_result(kit, doc)


def legacy_file_in_subfolder(kit: Kit) -> None:
    (kit.out_dir / "models/weights").mkdir()
    (kit.out_dir / "models/best.pt").rename(kit.out_dir / "models/weights/best.pt")
    doc = _result(kit)
    doc["model"] = ["weights/best.pt" if n == "best.pt" else n for n in doc["model"]]
    _set_result(kit, doc)


def modern_result_on_legacy(kit: Kit) -> None:
    """A 2.x result.yaml (model_stages) where 1.1 reads only `model`/`map`."""
    kit.write("models/epoch20/epoch20.pt", b"weights")
    _set_result(kit, {"best_stage_name": "epoch20", "model_stages": {"epoch20": {
        "stage_name": "epoch20", "files": ["epoch20.pt"], "timestamp": int(T0), "mAP": 0.7}}})


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


def _rescore(kit: Kit, score: Callable[[int, str], str]) -> None:
    """Rewrite column 2 of every result.tsv line (order kept) with ``score(line number, old score)``."""
    lines = kit.out_dir.joinpath("result.tsv").read_text().splitlines()
    kit.mining_tsv("".join(f"{ln.split(chr(9))[0]}\t{score(i, ln.split(chr(9))[1])}\n" for i, ln in enumerate(lines)))


def mining_tensor_scores(kit: Kit) -> None:
    """str() of a torch scalar: 'tensor(0.5312)' (the platform never reads the score: nothing lost)."""
    _rescore(kit, lambda _, old: f"tensor({float(old):.4f})")


def mining_nan_scores(kit: Kit) -> None:
    _rescore(kit, lambda i, old: "nan" if i else old)


def mining_integer_scores(kit: Kit) -> None:
    n = len(kit.out_dir.joinpath("result.tsv").read_text().splitlines())
    _rescore(kit, lambda i, _: str(n - i))


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
    "training": {f.__name__: f for f in (metric_percent, metric_string, eval_config_string, missing_best_stage, absolute_file_path, missing_model_file,
                                         no_timestamp, no_result_yaml, iou_range, legacy_result, upper_case_counts,
                                         missing_attachment, monitor_spaces, monitor_appended)},
    "infer": {f.__name__: f for f in (float_box, missing_score, full_path_keys, no_detection_key, legacy_annotations_key,
                                      unknown_class, extra_box_key, box_value_not_object, monitor_three_fields,
                                      monitor_float_state, monitor_percent_sign, rotate_angle, many_boxes)},
    "infer-seg": {f.__name__: f for f in (coco_dir_in_file_name, coco_missing_area, coco_counts_list,
                                          coco_one_based_categories)},
    "mining": {f.__name__: f for f in (mining_space_separated, mining_unsorted, mining_missing, mining_bare_sha1,
                                       mining_duplicates, mining_tensor_scores, mining_nan_scores,
                                       mining_integer_scores, monitor_spaces)},
}
# 1.1 (protocol 0.0.0) has its own training format, and no `boxes` key: the mutations that apply there
MUTATIONS_LEGACY: dict[str, dict[str, Mutation]] = {
    "training": {f.__name__: f for f in (legacy_map_percent, legacy_map_missing, legacy_map_not_number,
                                         legacy_missing_model_file, legacy_absolute_path, legacy_file_in_subfolder,
                                         modern_result_on_legacy, no_result_yaml, monitor_spaces)},
    "infer": {f.__name__: f for f in (float_box, missing_score, full_path_keys, no_detection_key, modern_boxes_key,
                                      unknown_class, extra_box_key, box_value_not_object, rotate_angle,
                                      many_boxes, monitor_three_fields)},
    "mining": MUTATIONS["mining"],
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


def _legacy(oracle_release: str) -> bool:
    return Release.parse(_suite_release(oracle_release)) < Release(2, 0)


def _mutations(oracle_release: str) -> dict[str, dict[str, Mutation]]:
    return MUTATIONS_LEGACY if _legacy(oracle_release) else MUTATIONS


def _cases(oracle_release: str) -> list[str]:
    """The cases a release has: 1.1 has no segmentation (object types 3/4 from 2.1 on; its infer reads detection
    JSON only, mining._get_infer_annotations)."""
    return [c for c in CASES if c in _mutations(oracle_release) or not _legacy(oracle_release)]


def oracle_params(function: str, releases: list[str]) -> tuple[str, list[Any]] | None:
    """Only the (release, case, mutation) combinations a release has (conftest.pytest_generate_tests)."""
    if function in ("test_conformant_outputs_agree", "test_drawn_mutation_combinations_agree"):
        return "oracle_release,case", [pytest.param(r, c, id=f"{r}-{c}") for r in releases for c in _cases(r)]
    if function == "test_mutation_verdicts_agree":
        return "oracle_release,case,mutation", [
            pytest.param(r, c, m, id=f"{r}-{c}-{m}") for r in releases for c in _cases(r) for m in _mutations(r)[c]]
    return None


def expected_topk(out_dir: Path, topk: int) -> set[str]:
    """The top-k asset ids by the executor's own scores (what the user asked mining for)."""
    path = out_dir / "result.tsv"
    best: list[tuple[float, str]] = []
    if path.exists():
        for ln in path.read_text().splitlines():
            parts = ln.replace(" ", "\t").split("\t")
            text = re.sub(r"^tensor\((.*)\)$", r"\1", parts[-1].strip())  # str() of a torch scalar
            try:
                score = float(text)
            except ValueError:
                continue
            if not math.isnan(score):  # nan has no rank: such lines are nobody's top-k by score
                best.append((score, parts[0].rsplit("/", 1)[-1].split(".")[0]))
    return {sha for _, sha in sorted(best, key=lambda p: -p[0])[:topk]}


def submitted_objects(out_dir: Path, candidates: set[str] | None = None) -> int:
    """Boxes the executor wrote (for ``candidates`` only, when given: other keys cannot be kept), whatever the
    shape it wrote them in (a bare list instead of {boxes: [...]} still holds boxes meant for that image)."""
    path = out_dir / "infer-result.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    if not isinstance(doc, dict):
        return 0
    if "detection" in doc and isinstance(doc["detection"], dict):
        total = 0
        for key, v in doc["detection"].items():
            if candidates is not None and key.rsplit("/", 1)[-1].split(".")[0] not in candidates:
                continue
            if isinstance(v, dict):
                total += len(v.get("boxes") or v.get("annotations") or [])
            elif isinstance(v, list):
                total += len(v)
        return total
    return len(doc.get("annotations", []))


def _unread_detection(out_dir: Path, object_type: ObjectType) -> bool:
    """A detection result with no `detection` object: nothing in it can be read as predictions."""
    if object_type != ObjectType.DETECTION:
        return False
    try:
        doc = json.loads((out_dir / "infer-result.json").read_text())
    except (OSError, ValueError):
        return True
    return not isinstance(doc, dict) or not isinstance(doc.get("detection"), dict)


def compare_verdicts(oracle: Oracle, out_dir: Path, shape: TaskShape, object_type: ObjectType,
                     candidates: list[str], findings: list[Any], label: str, class_names: list[str],
                     topk: int | None = None, answers: dict[str, str] | None = None) -> list[Diff]:
    """The platform's accept/reject (and what it kept) per part against the suite's findings on that release;
    returns the disagreements (empty: they agree) as Diffs ``verdict/<part>`` for allowed.yaml. A part the
    release has no reader for (1.1.0: monitor.txt) is not compared. ``answers`` (when given) receives the
    platform's answer per part: 'keeps', 'rejects: <error>', 'loses: <what>' or 'unavailable' (no reader)."""
    answers = answers if answers is not None else {}
    parts = ["monitor"] + [p for p, on in (("training", shape.run_training), ("infer", shape.run_infer),
                                           ("mining", shape.run_mining)) if on]
    ids = [c.rsplit("/", 1)[-1].split(".")[0] for c in candidates]
    topk = topk if topk is not None else max(1, len(candidates) - 1)
    reply = oracle.call("judge", out_dir=str(out_dir), parts=parts, executor_config={"class_names": class_names},
                        label_names=class_names, object_type=int(object_type), topk=topk, candidates=ids)
    problems: list[Diff] = []
    for part in parts:
        verdict = reply[part]
        if verdict.get("unavailable"):
            assert part == "monitor", f"{part} unavailable on {oracle.release}"  # only the monitor may lack a reader
            answers[part] = "unavailable"
            continue
        group = [f for f in findings if f.check.rule.startswith(GROUPS[part]) and f.status == Status.FAILED]
        must = sorted(f.check.rule for f in group if f.level == Level.MUST)
        reported = sorted(f"{f.check.rule}:{f.level}" for f in group)
        if not verdict["accepted"]:
            answers[part] = f"rejects: {verdict['error']}"
            if not must:
                problems.append(Diff(f"verdict/{part}", "platform-rejects",
                                     f"[{label}] platform rejects ({verdict['error']}) but the suite has no MUST "
                                     f"violation (reported: {reported or 'nothing'})"))
            continue
        loss = ""
        if part == "training" and verdict.get("lost"):
            loss = verdict["lost"]
        elif part == "infer":
            # 1.1 keeps only candidates (and, with mining, only the top-k): count what it could have kept
            scope = set(ids) if oracle.legacy else None
            if oracle.legacy and shape.run_mining and reply.get("mining", {}).get("accepted"):
                scope = set(reply["mining"]["selected"])
            submitted = submitted_objects(out_dir, scope)
            if verdict["objects"] < submitted:
                loss = f"{submitted - verdict['objects']} object(s) dropped"
            elif _unread_detection(out_dir, object_type):
                loss = "no 'detection' object: the task succeeds with no predictions at all"
        elif part == "mining":
            if set(verdict["selected"]) != expected_topk(out_dir, topk):
                loss = f"selected {verdict['selected']} instead of the top {topk} by score"
        elif part == "monitor":
            last = (out_dir / "monitor.txt").read_text().splitlines()[-1].split("\t")
            if len(last) > 2 and abs(float(verdict["percent"]) - float(last[2])) > 1e-6:
                loss = f"platform shows {verdict['percent']}, the executor's latest is {last[2]}"
        answers[part] = f"loses: {loss}" if loss else "keeps"
        if loss and not group:
            problems.append(Diff(f"verdict/{part}", "loss-unreported",
                                 f"[{label}] platform accepts and loses data ({loss}) but the suite reports nothing"))
        if not loss and must:
            problems.append(Diff(f"verdict/{part}", "suite-stricter",
                                 f"[{label}] platform accepts and keeps everything but the suite fails MUST {must}"))
    return problems


def compare(oracle: Oracle, kit: Kit, case: str, label: str, quiet_pending: bool = False) -> None:
    shape_name, object_type = CASES[case]
    findings = kit.judge(_suite_release(oracle.release))
    problems = compare_verdicts(oracle, kit.out_dir, SHAPES[shape_name], object_type, kit.candidates, findings, label,
                                CLASS_NAMES)
    judge_diffs(problems, {"release": oracle.release, "case": case, "mutation": label},
                what="the suite's verdict and the platform's", quiet_pending=quiet_pending)


def _fresh_kit(root: Path, case: str, release: str) -> Kit:
    shape_name, object_type = CASES[case]
    return make_kit(root, SHAPES[shape_name], object_type, release).conformant(release)


def test_conformant_outputs_agree(oracle_release: str, case: str, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    compare(oracle, _fresh_kit(tmp_path / "kit", case, _suite_release(oracle_release)), case, "conformant")


def test_mutation_verdicts_agree(oracle_release: str, case: str, mutation: str, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    kit = _fresh_kit(tmp_path / "kit", case, _suite_release(oracle_release))
    _mutations(oracle_release)[case][mutation](kit)
    compare(oracle, kit, case, mutation)


def test_drawn_mutation_combinations_agree(oracle_release: str, case: str) -> None:
    """Hypothesis draws pairs of mutations (order matters: a later one may repair or mask an earlier one)."""
    oracle = get_oracle(oracle_release)
    mutations = _mutations(oracle_release)[case]
    names = sorted(mutations)

    @settings(max_examples=8, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    def run(chosen: list[str]) -> None:
        root = Path(tempfile.mkdtemp(prefix="ymir-verdict-"))
        try:
            kit = _fresh_kit(root / "kit", case, _suite_release(oracle_release))
            for name in chosen:
                try:
                    mutations[name](kit)
                except (FileNotFoundError, KeyError, TypeError, StopIteration, AttributeError):
                    pass  # an earlier mutation removed what this one edits
            compare(oracle, kit, case, "+".join(chosen), quiet_pending=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    run()
