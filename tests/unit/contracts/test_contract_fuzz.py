"""No check ever raises, whatever the image wrote: garbage YAML/JSON/TSV/monitor content, wrong types, deep
nesting, huge numbers, symlinks, directories, binary files."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract_kit import SHAPES, Kit, make_kit
from ymir_conformance.contracts import REGISTRY, Status, judge, load_all
from ymir_conformance.contracts.base import RunView
from ymir_conformance.model import ObjectType, ProgressSample, RunOutcome
from ymir_conformance.platform import RELEASES

load_all()
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                      max_leaves=20)
near_names = st.sampled_from(["cat", "dog", "", " CAT ", "person", "a@b", "a/b", "epoch10", "1"])


def field_dict(keys: list[str], extra: st.SearchStrategy[Any] = values) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), extra | values | near_names, max_size=len(keys))


stage = field_dict(["stage_name", "files", "timestamp", "mAP", "mIoU", "maskAP", "tp", "fp", "fn"],
                   st.lists(st.sampled_from(["config.py", "/abs.pt", "../x", "epoch10/epoch10.pt"]), max_size=3)
                   | st.floats(-1, 200))
result_yaml = st.one_of(
    values,
    st.fixed_dictionaries({"best_stage_name": values | near_names,
                           "model_stages": st.dictionaries(near_names | st.text(max_size=5), stage | values, max_size=4)},
                          optional={"attachments": values | st.dictionaries(near_names, st.lists(near_names)),
                                    "evaluate_config": values, "object_type": values}),
    st.fixed_dictionaries({"model": values | st.lists(near_names), "map": values}),
)
rect = field_dict(["x", "y", "w", "h", "rotate_angle", "xmin"], st.integers(-100, 1000) | st.floats(-10, 100))
box = field_dict(["box", "class_name", "score"], rect) | values
det_json = st.one_of(values, st.fixed_dictionaries({"detection": values | st.dictionaries(
    st.text(max_size=10) | st.sampled_from(["KEY"]),
    values | st.fixed_dictionaries({}, optional={"boxes": st.lists(box, max_size=5) | values,
                                                 "annotations": st.lists(box, max_size=3)}), max_size=4)}))
seg = st.one_of(values, field_dict(["counts", "size"], st.text(alphabet="0123456789:;<=>?@ABC_`abco!", max_size=12)
                                   | st.lists(st.integers(-5, 80), max_size=3)),
                st.lists(st.lists(st.integers(-5, 80) | st.floats(), max_size=8), max_size=3))
coco_json = st.one_of(values, st.fixed_dictionaries({
    "images": values | st.lists(field_dict(["id", "file_name", "width", "height"],
                                           st.integers(-2, 4) | st.sampled_from(["FILE", "/in/assets/FILE"])),
                                max_size=4),
    "categories": values | st.lists(field_dict(["id", "name"], st.integers(-1, 3)), max_size=3),
    "annotations": values | st.lists(field_dict(["image_id", "category_id", "bbox", "area", "segmentation",
                                                 "confidence", "score"],
                                                seg | st.integers(-2, 5) | st.lists(st.integers(-5, 60) | st.floats(),
                                                                                     max_size=5)), max_size=6),
}))
token = st.sampled_from(["t1", "1663839980.5", "0.5", "1.0", "2", "4", "300002", "nan", "inf", "-1", "x", "", " "]) \
    | st.text(max_size=6)
monitor_line = st.lists(token, max_size=7).flatmap(lambda ts: st.sampled_from(["\t", " ", "\t\t"]).map(lambda s: s.join(ts)))
monitor_text = st.one_of(st.text(max_size=60), st.lists(monitor_line, max_size=4).map("\n".join))
mining_text = st.one_of(st.text(max_size=80), st.lists(st.lists(token | st.sampled_from(["CAND"]), max_size=3).flatmap(
    lambda ts: st.sampled_from(["\t", " "]).map(lambda s: s.join(ts))), max_size=6).map("\n".join))


@pytest.fixture(scope="module")
def kits() -> Iterator[dict[str, Kit]]:
    root = Path(tempfile.mkdtemp(prefix="ymirc-fuzz-"))
    try:
        yield {
            "training": make_kit(root / "t", SHAPES["training"]).conformant(),
            "det": make_kit(root / "d", SHAPES["mining+infer"]).conformant(),
            "coco": make_kit(root / "c", SHAPES["infer"], ObjectType.INSTANCE_SEGMENTATION).conformant(),
            "semseg": make_kit(root / "s", SHAPES["infer"], ObjectType.SEMANTIC_SEGMENTATION).conformant(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_all(outcome: RunOutcome) -> None:
    """Call every check function directly (so an exception fails the test), then through judge()."""
    for release in (RELEASES[0], RELEASES[1], RELEASES[4], RELEASES[-1]):
        view = RunView(outcome, release)
        for chk in REGISTRY.values():
            if chk.applies_to(view):
                for v in chk.func(view):
                    assert v.rule == chk.rule
                    assert isinstance(v.message, str) and v.message
        for f in judge(outcome, release):
            for v in f.violations:
                assert "internal error" not in v.message, v.message
            assert f.status in set(Status)


def fill(text: str, kit: Kit, replacements: dict[str, str] | None = None) -> str:
    for k, v in (replacements or {}).items():
        text = text.replace(k, v)
    return text


@SETTINGS
@given(result_yaml, st.booleans())
def test_result_yaml_never_raises(kits: dict[str, Kit], value: Any, as_text: bool) -> None:
    kit = kits["training"]
    kit.result_yaml(yaml.safe_dump(value) if not as_text else str(value))
    run_all(kit.outcome())


@SETTINGS
@given(det_json, st.integers(0, 1))
def test_detection_json_never_raises(kits: dict[str, Kit], value: Any, exit_code: int) -> None:
    kit = kits["det"]
    text = json.dumps(value).replace("KEY", kit.basenames[0])
    kit.infer_json(text)
    run_all(kit.outcome(exit_code=exit_code))


@SETTINGS
@given(coco_json, st.sampled_from(["coco", "semseg"]))
def test_coco_json_never_raises(kits: dict[str, Kit], value: Any, which: str) -> None:
    kit = kits[which]
    text = json.dumps(value).replace("FILE", kit.basenames[0])
    kit.infer_json(text)
    run_all(kit.outcome())


@SETTINGS
@given(monitor_text, st.lists(monitor_text, max_size=5), st.sampled_from([0, 1, 137, None]), st.booleans(),
       st.text(max_size=200))
def test_monitor_and_log_never_raise(kits: dict[str, Kit], final: str, samples: list[str], exit_code: int | None,
                                     cpu: bool, log: str) -> None:
    kit = kits["training"]
    kit.monitor(final)
    kit.log(log)
    progress = [ProgressSample(float(i), s) for i, s in enumerate(samples)]
    run_all(kit.outcome(exit_code=exit_code, timed_out=exit_code is None, progress=progress,
                        gpu_ids=() if cpu else ("0",), budget_total_s=5.0, budget_first_progress_s=1.0,
                        budget_heartbeat_s=1.0))


@SETTINGS
@given(mining_text)
def test_mining_tsv_never_raises(kits: dict[str, Kit], text: str) -> None:
    kit = kits["det"]
    kit.mining_tsv(text.replace("CAND", kit.candidates[0]))
    run_all(kit.outcome())


EDGE_CONTENT = [
    "[" * 100000, "{" * 50000, "[" * 3000 + "]" * 3000, "1" * 10000, "date: 2001-13-01\n",
    "a: &a [1,2]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c]\nmodel_stages: [*d,*d,*d,*d]\n",
    "\x00\x01\x02binary", "?", "- - - - -", "model_stages: {? [a, b] : 1}\n", '{"detection": {"a": {"boxes": [' + "1," * 5000 + "1]}}}",
    "best_stage_name: !!python/object/apply:os.system ['true']\n", "nan", "NaN", "\t\t\t\n" * 1000,
]


@pytest.mark.parametrize("content", EDGE_CONTENT, ids=range(len(EDGE_CONTENT)))
def test_edge_contents_everywhere(kits: dict[str, Kit], content: str) -> None:
    for kit in kits.values():
        for rel in ("models/result.yaml", "infer-result.json", "result.tsv", "monitor.txt"):
            kit.write(rel, content.encode("latin-1") if "\x00" in content else content)
        run_all(kit.outcome(progress=[ProgressSample(1.0, content)], exit_code=1))
        kit.conformant()


@pytest.mark.parametrize("kind", ["symlink", "directory", "dangling", "fifo"])
def test_special_files_everywhere(kits: dict[str, Kit], kind: str) -> None:
    for kit in kits.values():
        for rel in ("models/result.yaml", "infer-result.json", "result.tsv", "monitor.txt", "ymir-executor-out.log"):
            p = kit.out_dir / rel
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            if kind == "symlink":
                os.symlink("/etc/hostname", p)
            elif kind == "dangling":
                os.symlink("/nonexistent/x", p)
            elif kind == "directory":
                p.mkdir()
            else:
                os.mkfifo(p)
        run_all(kit.outcome(exit_code=1))
        run_all(kit.outcome())
        for rel in ("models/result.yaml", "infer-result.json", "result.tsv", "monitor.txt", "ymir-executor-out.log"):
            p = kit.out_dir / rel
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
        kit.conformant()


def test_special_files_are_reported_by_their_owner(kits: dict[str, Kit]) -> None:
    kit = kits["training"]
    p = kit.out_dir / "models/result.yaml"
    p.unlink()
    os.symlink("/etc/hostname", p)
    try:
        failed = {f.check.rule for f in judge(kit.outcome()) if f.status == Status.FAILED}
        assert failed == {"TR-01"}
    finally:
        p.unlink()
        kit.conformant()
