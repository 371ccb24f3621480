"""The author on-ramp behind ``python -m ymir_conformance workspace|rules explain``: the exact /in and /out a run
would mount, and each rule explained (title, level per release, what the platform does, the fix)."""
from __future__ import annotations

import ast
import inspect
import shlex
import textwrap
from pathlib import Path
from typing import Any

import yaml

from .contracts.base import Check
from .model import ObjectType, Task, TaskShape
from .platform import RELEASES, Release
from .workspace import (CLASS_NAMES, DatasetSpec, ModelPackage, Workspace, build_mining_infer, build_training,
                        package_model, write_yaml)

STUB_STAGE = "stub"
TASKS = {"training": (Task.TRAINING,), "mining": (Task.MINING,), "infer": (Task.INFER,),
         "mining+infer": (Task.MINING, Task.INFER)}


def stub_model(root: Path, object_type: ObjectType, class_names: tuple[str, ...] = CLASS_NAMES) -> ModelPackage:
    """A train-free model package: one stage ``stub`` holding ``model.json`` (class names only), packed as the
    platform stores models, so infer/mining workspaces need no training run. Replace it with your own trained
    /out (``--model-from``) to get your real weights under /in/models."""
    (root / STUB_STAGE).mkdir(parents=True, exist_ok=True)
    (root / STUB_STAGE / "model.json").write_text(f'{{"class_names": {list(class_names)!r}}}\n'.replace("'", '"'))
    info = {"executor_config": {"class_names": list(class_names)}, "task_context": {}, "best_stage_name": STUB_STAGE,
            "stages": {STUB_STAGE: {"stage_name": STUB_STAGE, "files": ["model.json"]}},
            "object_type": int(object_type), "package_version": "2.0.0", "attachments": {}, "evaluate_config": {}}
    write_yaml(root / "ymir-info.yaml", info)
    return ModelPackage(root, {STUB_STAGE: ("model.json",)}, STUB_STAGE, object_type, class_names)


def build_workspace(root: Path, *, task: str, export_format: str, release: Release, object_type: ObjectType,
                    templates: dict[Task, dict[str, Any]], seed: int = 0, model_from: Path | None = None,
                    gpu_ids: tuple[str, ...] = ()) -> Workspace:
    data = DatasetSpec(seed=seed)
    if ":" not in export_format:  # det-voc -> det-voc:raw, as config.yaml spells it (<annotation>:<asset>)
        export_format += ":raw"
    if task == "training":
        return build_training(root, template=templates.get(Task.TRAINING, {}), object_type=object_type,
                              export_format=export_format, data=data, release=release, gpu_ids=gpu_ids)
    pkg_root = root.parent / f".{root.name}-model"
    if model_from is not None:
        pkg = package_model(model_from, pkg_root, {"class_names": list(CLASS_NAMES)}, object_type)
        if pkg is None:
            raise SystemExit(f"{model_from}/models/result.yaml gives no usable model (run `judge` on that /out)")
    else:
        pkg = stub_model(pkg_root, object_type)
    return build_mining_infer(root, shape=TaskShape.of(*TASKS[task]), templates=templates, object_type=object_type,
                              model=pkg, stage=pkg.best_stage, data=data, release=release, gpu_ids=gpu_ids,
                              label=task)


def docker_command(ws: Workspace, image: str = "IMAGE") -> list[str]:
    """The `docker run` of the suite for this workspace (minus its limits): /in read-only, the platform's links
    mounted at their own host paths, no network, a non-root user, no command."""
    argv = ["docker", "run", "--rm", "-v", f"{ws.in_dir.resolve()}:/in:ro", "-v", f"{ws.out_dir.resolve()}:/out"]
    for host in (ws.asset_cache, ws.tensorboard_host):
        if host is not None:
            argv += ["-v", f"{host.resolve()}:{host.resolve()}"]
    return argv + ["--user", "12345:12345", "--shm-size=16G", "--network", "none", image]


def workspace_readme(ws: Workspace, task: str, release: Release) -> str:
    cmd = " ".join(shlex.quote(a) for a in docker_command(ws))
    return textwrap.dedent(f"""\
        A {task} workspace as YMIR {release} mounts it (written by `python -m ymir_conformance workspace`).
        in/   is /in (read-only in the container); out/ is /out as the container finds it.
        {"in/assets (and a training's out/tensorboard) link to host folders, mounted at their own paths as the platform does."
         if ws.asset_cache is not None else ""}
        Run your image on it (the platform passes no command):

          {cmd}

        then judge what it wrote, without Docker:

          python -m ymir_conformance judge --in {ws.in_dir} --out {ws.out_dir} --platform {release}

        Rebuild the workspace before every run: a run changes out/.
        """)


# ---------------------------------------------------------------------------------------------------------
# rules explain
# ---------------------------------------------------------------------------------------------------------


def _text(node: ast.AST, scope: dict[str, Any]) -> str | None:
    """The text of a string expression: a literal, a module constant, an f-string (its fields as <...>)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and isinstance(scope.get(node.id), str):
        return str(scope[node.id])
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else
                       "<" + ast.unparse(v.value) + ">" if isinstance(v, ast.FormattedValue) else "" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, scope), _text(node.right, scope)
        return left + right if left is not None and right is not None else None
    return None


def messages_and_fixes(chk: Check) -> tuple[list[str], list[str]]:
    """The violation messages (what the platform does with such output) and fixes a check can give, read from
    its module's source: every ``Violation(<this rule>, message, ..., fix=...)`` call, and the ``fix=`` texts in
    the check function itself."""
    module = inspect.getmodule(chk.func)
    try:
        tree = ast.parse(inspect.getsource(module)) if module is not None else None
    except (OSError, TypeError, SyntaxError):
        tree = None
    if tree is None or module is None:
        return [], []
    scope = vars(module)
    messages: list[str] = []
    fixes: list[str] = []
    own = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == chk.func.__name__), None)
    own_calls = {id(n) for n in ast.walk(own)} if own is not None else set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        is_ours = name == "Violation" and bool(node.args) and _text(node.args[0], scope) == chk.rule
        if is_ours and len(node.args) >= 2 and (t := _text(node.args[1], scope)):
            messages.append(t)
        if is_ours or id(node) in own_calls:
            for kw in node.keywords:
                if kw.arg == "fix" and (t := _text(kw.value, scope)):
                    fixes.append(t)
    return list(dict.fromkeys(messages)), list(dict.fromkeys(fixes))


def explain(chk: Check) -> dict[str, Any]:
    messages, fixes = messages_and_fixes(chk)
    return {
        "rule": chk.rule, "title": chk.title, "area": str(chk.area),
        "basis": str(chk.basis), "basis_reason": chk.basis_reason,
        "levels": {str(r): (str(chk.level_on(r)) if chk.level_on(r) else "not applicable") for r in RELEASES},
        "tasks": sorted(str(t) for t in chk.tasks), "object_types": sorted(int(t) for t in chk.object_types),
        "platform": messages, "fix": fixes,
    }


def explain_text(info: dict[str, Any]) -> str:
    lines = [f"{info['rule']}: {info['title']}", f"  area: {info['area']}; tasks: {', '.join(info['tasks'])}"]
    if info.get("basis"):
        lines.append(textwrap.fill(f"basis: {info['basis']} ({info.get('basis_reason', '')})", 110,
                                   initial_indent="  ", subsequent_indent="    "))
    lines.append("  level per platform release:")
    lines += [f"    {rel:<4} {lvl}" for rel, lvl in info["levels"].items()]
    if info["platform"]:
        lines.append("  what the platform does / what the suite reports:")
        lines += [textwrap.fill(m, 110, initial_indent="    - ", subsequent_indent="      ") for m in info["platform"]]
    if info["fix"]:
        lines.append("  the fix:")
        lines += [textwrap.fill(f, 110, initial_indent="    - ", subsequent_indent="      ") for f in info["fix"]]
    return "\n".join(lines)


def load_templates(path: Path | None) -> dict[Task, dict[str, Any]]:
    """Templates for the workspace: a YAML file of one template (used for every task), else the init skeleton's."""
    if path is not None:
        tpl = yaml.safe_load(path.read_text())
        if not isinstance(tpl, dict):
            raise SystemExit(f"{path} is not a YAML mapping")
        return {t: dict(tpl) for t in Task}
    from .scaffold import TEMPLATES

    return {t: dict(yaml.safe_load(TEMPLATES[f"{t.value}-template.yaml"])) for t in Task}


__all__ = ["build_workspace", "docker_command", "explain", "explain_text", "load_templates", "stub_model",
           "workspace_readme"]
