"""docs/writing-an-executor.md: every yaml/json example is what the suite generates or accepts."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from ymir_conformance.__main__ import main
from ymir_conformance.contracts.base import Status, judge
from ymir_conformance.model import Task, TaskShape
from ymir_conformance.platform import Release
from ymir_conformance.scaffold import TEMPLATES
from ymir_conformance.workspace import env_yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-an-executor.md"


def blocks() -> dict[str, str]:
    """info string after the language -> body, for every fenced yaml/json/text block."""
    found = re.findall(r"^```(yaml|json|text) ([^\n]+)\n(.*?)^```", DOC.read_text(), re.M | re.S)
    return {name.strip(): body for _, name, body in found}


def test_every_example_is_checked() -> None:
    assert set(blocks()) == {"manifest", "template", "env.yaml training 2.5", "config.yaml infer 2.5",
                             "monitor.txt", "result.yaml", "infer-result.json"}


def test_env_yaml_is_what_the_platform_writes() -> None:
    doc = yaml.safe_load(blocks()["env.yaml training 2.5"])
    assert doc == env_yaml(doc["task_id"], TaskShape.of(Task.TRAINING), Release(2, 5))


def test_manifest_and_template_are_the_skeletons() -> None:
    assert yaml.safe_load(blocks()["manifest"]) == yaml.safe_load(TEMPLATES["manifest.yaml"])
    assert yaml.safe_load(blocks()["template"]) == yaml.safe_load(TEMPLATES["training-template.yaml"])


def test_config_is_what_the_workspace_command_writes(tmp_path: Path) -> None:
    assert main(["workspace", "--task", "infer", "--release", "2.5", str(tmp_path / "ws")]) == 0
    written = yaml.safe_load((tmp_path / "ws" / "in" / "config.yaml").read_text())
    assert yaml.safe_load(blocks()["config.yaml infer 2.5"]) == written
    assert (tmp_path / "ws" / "in" / "models" / "stub" / "model.json").is_file()
    assert "docker run" in (tmp_path / "ws" / "README.txt").read_text()


def _judged(tmp_path: Path, task: str, files: dict[str, str]) -> dict[str, list[str]]:
    """Build a workspace, write ``files`` into its /out, judge it; rule -> statuses."""
    from ymir_conformance.__main__ import outcome_from_dirs

    ws = tmp_path / task
    assert main(["workspace", "--task", task, "--release", "2.5", str(ws)]) == 0
    for rel, text in files.items():
        path = ws / "out" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    findings = judge(outcome_from_dirs(ws / "in", ws / "out", 0, None), Release(2, 5))
    return {f.check.rule: [str(f.status)] + [v.message for v in f.violations] for f in findings}


def test_result_yaml_passes_the_training_rules(tmp_path: Path) -> None:
    files = {"models/result.yaml": blocks()["result.yaml"], "models/epoch_1/model.json": "{}",
             "models/epoch_2/model.json": "{}"}
    judged = _judged(tmp_path, "training", files)
    for rule in ("TR-01", "TR-02", "TR-03", "TR-04", "TR-07", "TR-08", "TR-11"):
        assert judged[rule][0] == str(Status.PASSED), (rule, judged[rule])


def test_monitor_line_and_infer_result_pass(tmp_path: Path) -> None:
    line = blocks()["monitor.txt"].strip("\n")
    assert re.fullmatch(r"t\w{29}\t\d+\.\d{6}\t0\.35\t2\t0", line)
    doc = json.loads(blocks()["infer-result.json"])
    box = doc["detection"]["000001.jpg"]["boxes"][0]
    assert all(isinstance(box["box"][k], int) for k in "xywh") and 0 <= box["score"] <= 1
    judged = _judged(tmp_path, "infer", {"infer-result.json": blocks()["infer-result.json"]})
    for rule in ("INF-01", "INF-03", "INF-04"):
        assert judged[rule][0] == str(Status.PASSED), (rule, judged[rule])
