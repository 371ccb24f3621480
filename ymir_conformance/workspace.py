"""Building ``/in`` and ``/out`` exactly as the platform leaves them before a task container starts.

* env.yaml as ``mir/tools/env_config.py`` writes it (``yaml.safe_dump``: sorted keys; shape per release),
* config.yaml = the image's template as the web UI sends it (falsy values dropped for mining/infer, empty ones
  for training) + the platform's reserved keys (contract §3.3), dumped with sorted keys,
* the dataset through :mod:`ymir_conformance.datasets` (assets, annotations, index files),
* model packages as ``models.pack_and_copy_models`` / ``prepare_model`` make and extract them (§5.3),
* ``/out`` with empty ``models/`` and ``tensorboard/``, the executor log, and the platform's PENDING monitor
  line, everything ``chmod 777`` (§1.4, §1.13).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import datasets
from .errors import WorkspaceError
from .model import ObjectType, Task, TaskShape
from .platform import LATEST, Release
from .runner import container_gpu_id

# Deliberately not in alphabetical order: an image that sorts class_names or assumes its own order maps
# indices to the wrong names (IN-03), which the ground-truth check then sees.
CLASS_NAMES = ("person", "cat", "dog")
GROUND_TRUTH = "ground-truth.json"  # beside in/ and out/, never visible to the image
CANDIDATE_SEED_OFFSET = 7919


def task_id_for(label: str, seed: int) -> str:
    """A 30-character sub-task id shaped like the platform's (``t0000001000002ebb7f11653630774``)."""
    digest = hashlib.sha1(f"{label}:{seed}".encode()).hexdigest()
    return ("t00000010000" + digest)[:30]


def env_yaml(task_id: str, shape: TaskShape, release: Release = LATEST) -> dict[str, Any]:
    """env.yaml content for a task (contract §3.2), shaped for ``release``."""
    training = shape.run_training
    env: dict[str, Any] = {
        "task_id": task_id,
        "run_training": training,
        "run_mining": shape.run_mining,
        "run_infer": shape.run_infer,
        "input": {
            "root_dir": "/in", "assets_dir": "/in/assets", "annotations_dir": "/in/annotations",
            "models_dir": "/in/models", "config_file": "/in/config.yaml",
            "training_index_file": "/in/train-index.tsv" if training else "",
            "val_index_file": "/in/val-index.tsv" if training else "",
            "candidate_index_file": "" if training else "/in/candidate-index.tsv",
        },
        "output": {
            "root_dir": "/out", "models_dir": "/out/models", "tensorboard_dir": "/out/tensorboard",
            "training_result_file": "/out/models/result.yaml", "mining_result_file": "/out/result.tsv",
            "infer_result_file": "/out/infer-result.json", "monitor_file": "/out/monitor.txt",
        },
    }
    if release.protocol_version:
        env["protocol_version"] = release.protocol_version
        env["output"]["executor_log_file"] = "/out/ymir-executor-out.log"
    if release.has_manifest_file:
        env["manifest_file"] = "/img-man/manifest.yaml"
    return env


def ui_filtered(template: dict[str, Any], task: Task) -> dict[str, Any]:
    """What the web UI sends back of a template: training drops '' values, mining/infer drop every falsy one."""
    if task is Task.TRAINING:
        return {k: v for k, v in template.items() if v != ""}
    return {k: v for k, v in template.items() if k and v}


def config_yaml(template: dict[str, Any], *, task_id: str, class_names: list[str], gpu_ids: tuple[str, ...],
                object_type: ObjectType, release: Release, shape: TaskShape,
                pretrained: list[str] | None = None, model_params: list[str] | None = None,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.yaml: template + the platform's reserved keys (contract §3.3)."""
    cfg = dict(template)
    cfg.update(overrides or {})
    cfg["task_id"] = task_id
    cfg["class_names"] = [c.strip().lower() for c in class_names]
    cfg["gpu_id"] = container_gpu_id(gpu_ids)
    cfg["gpu_count"] = len(gpu_ids)
    cfg.setdefault("openpai_enable", False)
    if release.config_has_object_type:
        cfg["object_type"] = int(object_type)
    else:
        cfg.pop("object_type", None)
    if shape.run_training:
        cfg.pop("model_params_path", None)
        if pretrained:
            cfg["pretrained_model_params"] = pretrained
        else:
            cfg.pop("pretrained_model_params", None)
    else:
        cfg.pop("pretrained_model_params", None)
        cfg["model_params_path"] = model_params or []
        cfg["run_infer"] = shape.run_infer
        cfg["run_mining"] = shape.run_mining
    return cfg


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=True))


def chmod_777(root: Path) -> None:
    """``chmod -R 777`` as the platform does to /out before start (contract §1.4)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o777)


def prepare_out(out_dir: Path, task_id: str) -> None:
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    (out_dir / "tensorboard").mkdir(exist_ok=True)
    (out_dir / "ymir-executor-out.log").write_bytes(b"")
    (out_dir / "monitor.txt").write_text(f"{task_id}\t{time.time():.6f}\t0.00\t1\t0\n")
    chmod_777(out_dir)


def tree_digest(root: Path) -> str:
    """A digest of names, sizes and mtimes under ``root`` (to tell whether a run wrote into /in)."""
    h = hashlib.sha1()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------
# Model packages
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPackage:
    """A trained model as the platform stores it: ``<root>/<stage>/<file>`` + ``ymir-info.yaml``."""

    root: Path
    stages: dict[str, tuple[str, ...]]
    best_stage: str
    object_type: ObjectType
    class_names: tuple[str, ...]
    legacy: bool = False  # 1.1-style flat package (files directly under /in/models)

    def non_best_stage(self) -> str | None:
        others = [s for s in self.stages if s != self.best_stage]
        return others[0] if others else None


def _safe_model_file(models_dir: Path, stage: str, name: str) -> Path | None:
    """Where the platform finds a stage file (``models._find_model_file``), refusing escapes and links."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts:
        return None
    for cand in (models_dir / stage / name, models_dir / name):
        try:
            st = os.lstat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            return cand
    return None


def package_model(out_dir: Path, dest: Path, executor_config: dict[str, Any],
                  object_type: ObjectType) -> ModelPackage | None:
    """Pack /out/models like ``pack_and_copy_models``; None when result.yaml gives nothing usable."""
    models_dir = out_dir / "models"
    try:
        raw = (models_dir / "result.yaml").read_text()
        result = yaml.safe_load(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(result, dict):
        return None
    stages: dict[str, list[str]] = {}
    legacy = False
    if isinstance(result.get("model_stages"), dict):
        for key, body in result["model_stages"].items():
            files = body.get("files") if isinstance(body, dict) else None
            if isinstance(files, list):
                stages[str(key)] = [f for f in files if isinstance(f, str)]
        best = str(result.get("best_stage_name", ""))
    elif isinstance(result.get("model"), list):
        legacy = True
        stages["default_best_stage"] = [os.path.basename(str(f)) for f in result["model"]]
        best = "default_best_stage"
    else:
        return None
    if best not in stages:
        return None
    if dest.exists():
        shutil.rmtree(dest)
    packed: dict[str, tuple[str, ...]] = {}
    for stage, files in stages.items():
        copied = []
        for name in files:
            src = _safe_model_file(models_dir, stage, name)
            if src is None:
                continue
            target = dest / stage / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            copied.append(name)
        if copied:
            packed[stage] = tuple(copied)
    if best not in packed:
        return None
    class_names = tuple(str(c) for c in executor_config.get("class_names", []))
    info = {"executor_config": executor_config, "task_context": {}, "best_stage_name": best,
            "stages": {s: {"stage_name": s, "files": list(f)} for s, f in packed.items()},
            "object_type": int(object_type), "package_version": "2.0.0", "attachments": {}, "evaluate_config": {}}
    write_yaml(dest / "ymir-info.yaml", info)
    return ModelPackage(dest, packed, best, object_type, class_names, legacy)


def load_package(root: Path) -> ModelPackage | None:
    """A package written by :func:`package_model` (e.g. cached by an earlier session), or None."""
    try:
        info = yaml.safe_load((root / "ymir-info.yaml").read_text())
        stages = {str(k): tuple(v["files"]) for k, v in info["stages"].items()}
        return ModelPackage(root, stages, str(info["best_stage_name"]), ObjectType(int(info["object_type"])),
                            tuple(info["executor_config"].get("class_names", [])))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None


def install_model(pkg: ModelPackage, in_dir: Path, stage: str, release: Release) -> list[str]:
    """Extract one stage into /in/models like ``prepare_model``; returns the container paths for config.yaml."""
    models = in_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pkg.root / "ymir-info.yaml", models / "ymir-info.yaml")
    paths = []
    for name in pkg.stages[stage]:
        if release.per_stage_models and not pkg.legacy:
            target, cpath = models / stage / name, f"/in/models/{stage}/{name}"
        else:  # 1.1 packages extract flat, while config may still name the stage directory (contract §9.11)
            target, cpath = models / name, f"/in/models/{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pkg.root / stage / name, target)
        paths.append(cpath)
    return paths


# --------------------------------------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------------------------------------


@dataclass
class Workspace:
    root: Path
    shape: TaskShape
    object_type: ObjectType
    task_id: str
    config: dict[str, Any]
    env: dict[str, Any]
    export_format: str | None = None
    candidates: list[str] = field(default_factory=list)
    summary: Any = None

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"


@dataclass(frozen=True)
class DatasetSpec:
    """Which synthetic data a workspace gets."""

    seed: int = 0
    train: int = 24
    val: int = 8
    candidates: int = 8
    class_names: tuple[str, ...] = CLASS_NAMES
    edge_cases: bool = False
    empty_val: bool = False
    corrupt_train_image: bool = False
    flat_candidate_names: bool = False
    extra_class_names: tuple[str, ...] = ()  # in class_names, absent from the data (a class with no examples)
    string_values: bool = False  # template values as the web UI returns them after an edit: strings


def write_ground_truth(path: Path, candidates: list[str], scenes: list[datasets.Scene]) -> None:
    """What is really in each candidate image: basename -> size and objects (class name, [x, y, w, h])."""
    truth = {
        os.path.basename(cpath): {"width": sc.width, "height": sc.height,
                                  "objects": [{"class_name": o.class_name, "box": list(o.box)} for o in sc.objects]}
        for cpath, sc in zip(candidates, scenes)
    }
    path.write_text(json.dumps(truth, sort_keys=True))


def _fresh(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()


def build_training(root: Path, *, template: dict[str, Any], object_type: ObjectType, export_format: str,
                   data: DatasetSpec, release: Release = LATEST, gpu_ids: tuple[str, ...] = (),
                   pretrained: tuple[ModelPackage, str] | None = None, label: str = "training",
                   overrides: dict[str, Any] | None = None) -> Workspace:
    _fresh(root)
    shape = TaskShape.of(Task.TRAINING)
    task_id = task_id_for(label, data.seed)
    scenes = list(datasets.generate_scenes(data.seed, data.train + data.val, object_type, list(data.class_names)))
    train, val = scenes[: data.train], scenes[data.train:]
    if data.edge_cases:
        train = train + list(datasets.edge_case_scenes(data.seed, object_type, list(data.class_names)))
    if data.empty_val:
        val = []
    if data.corrupt_train_image:
        train = train + [datasets.corrupt_scene(data.seed)]
    in_dir = root / "in"
    try:
        summary = datasets.export_training_set(in_dir, train=train, val=val, class_names=list(data.class_names),
                                               export_format=export_format, release=release)
    except ValueError as exc:
        raise WorkspaceError(f"cannot export a {object_type.name} dataset as {export_format!r}: {exc}") from None
    (in_dir / "models").mkdir(exist_ok=True)
    pretrained_paths = install_model(pretrained[0], in_dir, pretrained[1], release) if pretrained else None
    env = env_yaml(task_id, shape, release)
    tpl = ui_filtered(template, Task.TRAINING)
    if data.string_values:
        tpl = {k: (str(v) if isinstance(v, (bool, int, float)) else v) for k, v in tpl.items()}
    cfg = config_yaml(tpl, task_id=task_id, class_names=[*data.class_names, *data.extra_class_names],
                      gpu_ids=gpu_ids, object_type=object_type, release=release, shape=shape,
                      pretrained=pretrained_paths, overrides={"export_format": export_format, **(overrides or {})})
    write_yaml(in_dir / "env.yaml", env)
    write_yaml(in_dir / "config.yaml", cfg)
    prepare_out(root / "out", task_id)
    return Workspace(root, shape, object_type, task_id, cfg, env, export_format, summary=summary)


def build_mining_infer(root: Path, *, shape: TaskShape, templates: dict[Task, dict[str, Any]],
                       object_type: ObjectType, model: ModelPackage, stage: str, data: DatasetSpec,
                       release: Release = LATEST, gpu_ids: tuple[str, ...] = (), label: str = "infer",
                       overrides: dict[str, Any] | None = None) -> Workspace:
    """Mining, infer, or both in one run; the config is the merge of the templates (infer, then mining)."""
    _fresh(root)
    task_id = task_id_for(label, data.seed)
    scenes = list(datasets.generate_scenes(data.seed + CANDIDATE_SEED_OFFSET, data.candidates, object_type,
                                           list(data.class_names)))
    if data.edge_cases:  # candidates the platform can produce but images often mishandle (IN-06)
        edge = datasets.edge_case_scenes(data.seed, object_type, list(data.class_names))
        scenes += [sc for sc in edge if sc.ext in ("unknown", "bmp") or min(sc.width, sc.height) <= 8]
    in_dir = root / "in"
    candidates = datasets.export_candidates(in_dir, scenes, flat_names=data.flat_candidate_names, release=release)
    write_ground_truth(root / GROUND_TRUTH, candidates, scenes)
    for sub in ("annotations", "predictions"):
        (in_dir / sub).mkdir(exist_ok=True)
    model_paths = install_model(model, in_dir, stage, release)
    merged: dict[str, Any] = {}
    for task in (Task.INFER, Task.MINING):
        if task in shape.tasks:
            merged.update(ui_filtered(templates.get(task, {}), task))
    env = env_yaml(task_id, shape, release)
    cfg = config_yaml(merged, task_id=task_id, class_names=list(model.class_names), gpu_ids=gpu_ids,
                      object_type=object_type, release=release, shape=shape, model_params=model_paths,
                      overrides=overrides)
    write_yaml(in_dir / "env.yaml", env)
    write_yaml(in_dir / "config.yaml", cfg)
    prepare_out(root / "out", task_id)
    return Workspace(root, shape, object_type, task_id, cfg, env, None, candidates)
