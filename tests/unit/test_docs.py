"""docs/writing-an-executor.md: every yaml/json example is what the suite generates or accepts; the README's
Layout lists every module of the package."""
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
README = Path(__file__).resolve().parents[2] / "README.md"
PACKAGE = Path(__file__).resolve().parents[2] / "ymir_conformance"


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


def layout_entries() -> set[str]:
    """The paths the README's Layout block lists under ymir_conformance/ (folders end in '/'): an entry is a line's
    first word when it is a file or folder name; its indentation says which folder it is in."""
    block = re.search(r"^## Layout\n\n```\n(ymir_conformance/\n.*?)^```", README.read_text(), re.M | re.S)
    assert block, "README.md has no Layout block starting with ymir_conformance/"
    found: set[str] = set()
    folders: list[tuple[int, str]] = [(0, "")]  # (indent, path) of the folders the next lines may be in
    for line in block.group(1).splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the next top-level entry (examples/, tests/, ...): outside the package
        name = line.split()[0]
        if not re.fullmatch(r"[\w.]+(\.py|/)", name):
            continue  # a description's continuation line
        while folders[-1][0] >= indent:
            folders.pop()
        path = folders[-1][1] + name
        found.add(path)
        if name.endswith("/"):
            folders.append((indent, path))
    return found


def test_readme_layout_lists_every_module() -> None:
    """One line per module: every .py of the package (a subpackage's __init__.py is its folder's line), and no
    line for a module that is gone."""
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    wanted = {m for m in modules if not (m.endswith("/__init__.py") and "/" in m)}
    wanted |= {str(p.relative_to(PACKAGE)) + "/" for p in PACKAGE.rglob("*") if p.is_dir() and
               (p / "__init__.py").is_file()}
    listed = layout_entries()
    assert not wanted - listed, f"README Layout misses: {sorted(wanted - listed)}"
    assert not listed - wanted, f"README Layout lists what is not in the package: {sorted(listed - wanted)}"
