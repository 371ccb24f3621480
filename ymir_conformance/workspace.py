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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import datasets, guard
from .hyper import HyperParam, edit_template
from .errors import UnsafeOutput, WorkspaceError
from .model import ObjectType, Task, TaskShape
from .platform import LATEST, Release
from .rmtree import remove_tree_or_raise
from .runner import container_gpu_id

# The training's selection (config.yaml class_names, in the user's order). Deliberately not in alphabetical order:
# an image that sorts class_names or assumes its own order maps indices to the wrong names (IN-03), which the
# ground-truth check then sees.
CLASS_NAMES = ("person", "cat", "dog")
# The dataset's labels in label-id order (the user's label store numbers labels by creation). The platform trains on
# the classes the user selects: its exporter writes each object's index in class_names, never its label id
# (training.py type_id_idx_mapping -> exporter class_ids_mapping), and drops the objects of the labels not selected,
# which stay in the images, unlabelled. Here every selected class's index differs from its label id (person 0/2,
# cat 1/3, dog 2/1) and "car" is drawn but never selected.
LABEL_NAMES = ("car", "dog", "person", "cat")
DATA_VERSION = 2
"""Bump when the data of a seed changes (labels, selection, scene drawing): it keys the model cache, so that a model
trained on an earlier suite's data is never judged against this one's candidates (2: the label subset)."""
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


def prepare_out(out_dir: Path, task_id: str, tensorboard_host: Path | None = None, chmod: bool = True,
                model_dirs: bool = True) -> None:
    """/out as the platform leaves it before the container starts (contract §1.4, §1.13).

    ``tensorboard_host`` (2.x training): ``/out/tensorboard`` is then a symlink to that host folder (chmod 777),
    which the runner mounts at its own absolute path, and which already holds ``executor.log``, a link to the
    host path of the executor log that dangles inside the container (``training.py``). Otherwise a plain folder.
    The executor log is created after the ``chmod -R 777``, so it is 0644 as on the platform: a non-root image
    cannot write to it directly (its stdout and stderr go there). ``chmod=False`` (1.1): no ``chmod -R 777`` at
    all; /out then belongs to the uid the platform runs as, which is also the container's ``--user``
    (:func:`own_tree`). ``model_dirs=False`` (1.1 mining/infer): no ``models/`` nor ``tensorboard/``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "ymir-executor-out.log"
    if model_dirs:  # not for 1.1 mining/infer: the platform makes only <work>/out there
        (out_dir / "models").mkdir(exist_ok=True)
        if tensorboard_host is not None:
            remove_tree_or_raise(tensorboard_host)
            tensorboard_host.mkdir(parents=True)
            os.symlink(log.resolve(), tensorboard_host / "executor.log")
            os.chmod(tensorboard_host, 0o777)
            os.symlink(tensorboard_host.resolve(), out_dir / "tensorboard")
        else:
            (out_dir / "tensorboard").mkdir(exist_ok=True)
    (out_dir / "monitor.txt").write_text(f"{task_id}\t{time.time():.6f}\t0.00\t1\t0\n")
    if chmod:
        chmod_777(out_dir)
    log.write_bytes(b"")
    os.chmod(log, 0o644)


def own_tree(root: Path, user: str) -> None:
    """Give a folder the platform made to ``uid:gid``: the platform process creates /out (1.1, no chmod) and the
    asset cache (2.x) as the uid it also passes as ``--user``, so the container may write there."""
    uid, gid = (int(x) for x in user.split(":"))
    for rel, st in [("", os.lstat(root)), *guard.walk(root)]:
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(root / rel if rel else root, uid, gid, follow_symlinks=False)


def cache_assets(in_dir: Path, cache: Path, decoys: list[datasets.Scene]) -> None:
    """Make ``/in/assets`` what the platform gives (2.x, contract §1.4): a symlink to the user's asset cache,
    mounted read-write at its own host path, holding this task's images and others' (``decoys``)."""
    remove_tree_or_raise(cache)
    os.rename(in_dir / "assets", cache)
    for scene in decoys:  # other tasks' images: never listed in an index, never to be opened (LC-04)
        sub = cache / scene.sha1[-2:]
        sub.mkdir(exist_ok=True)
        (sub / f"{scene.sha1}.{scene.ext}").write_bytes(scene.image_bytes)
    os.symlink(cache.resolve(), in_dir / "assets")


def tree_digest(root: Path) -> str:
    """A digest of names, sizes and mtimes under ``root`` (to tell whether a run wrote into /in or the asset
    cache); links are listed, never followed, and the walk is bounded (:func:`guard.walk`)."""
    h = hashlib.sha1()
    for rel, st in guard.walk(root):
        # a name the image made may not be UTF-8 (listdir gives its bytes as surrogate escapes): hash the bytes
        h.update(f"{rel}:{st.st_mode:o}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
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


def _copy_stage_file(out_dir: Path, stage: str | None, parts: tuple[str, ...], target: Path, budget: list[int]) -> bool:
    """Copy one listed stage file where the platform finds it (``models._find_model_file``: <stage>/<f>, then
    <f>) through the guarded door, sparse-aware, its apparent size counted against the package ``budget``; False
    when it is missing or refused (TR-04 reports links and missing files, TR-15 files over the caps, sparse
    beyond reason or unreadable)."""
    name = "/".join(parts)
    for rel in ([f"models/{stage}/{name}"] if stage else []) + [f"models/{name}"]:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copied = guard.copy_file(out_dir, rel, target, min(guard.CAPS["model-file"], budget[0]))
        except FileNotFoundError:
            continue
        except (UnsafeOutput, OSError):
            target.unlink(missing_ok=True)
            return False
        budget[0] -= copied
        return True
    return False


def package_model(out_dir: Path, dest: Path, executor_config: dict[str, Any],
                  object_type: ObjectType) -> ModelPackage | None:
    """Pack /out/models like ``pack_and_copy_models``; None when result.yaml gives nothing usable.

    Everything is read through :mod:`ymir_conformance.guard`, and host paths are built only from stage keys and
    file names that are plain names (checked before anything is written): a stage key such as ``/tmp/x`` or
    ``../../x`` is skipped here and reported by TR-07, a file reached through a link by TR-04.
    """
    try:
        result = guard.load_yaml(guard.read_text(out_dir, "models/result.yaml", guard.CAPS["result-yaml"]))
    except (OSError, UnsafeOutput, yaml.YAMLError):
        return None
    if not isinstance(result, dict):
        return None
    stages: dict[str, list[tuple[str, ...]]] = {}
    legacy = False
    if isinstance(result.get("model_stages"), dict):
        for key, body in result["model_stages"].items():
            stage = guard.plain_name(key)
            files = body.get("files") if isinstance(body, dict) else None
            if stage is None or not isinstance(files, list):
                continue
            stages[stage] = [p for p in map(guard.plain_relpath, files) if p is not None]
        best = result.get("best_stage_name")
    elif isinstance(result.get("model"), list):
        legacy = True
        names = [guard.plain_name(os.path.basename(f)) for f in result["model"] if isinstance(f, str)]
        stages["default_best_stage"] = [(n,) for n in names if n is not None]
        best = "default_best_stage"
    else:
        return None
    if not isinstance(best, str) or best not in stages:
        return None
    remove_tree_or_raise(dest)
    dest.mkdir(parents=True)
    budget = [guard.CAPS["model-package"]]
    packed: dict[str, tuple[str, ...]] = {}
    for stage, files in stages.items():
        copied = []
        for parts in files:
            if _copy_stage_file(out_dir, None if legacy else stage, parts, dest / stage / Path(*parts), budget):
                copied.append("/".join(parts))
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
        info = guard.load_yaml(guard.read_text(root, "ymir-info.yaml", guard.CAPS["result-yaml"]))
        stages = {str(k): tuple(v["files"]) for k, v in info["stages"].items()}
        if any(guard.plain_name(k) is None or any(guard.plain_relpath(f) is None for f in fs)
               for k, fs in stages.items()):
            return None  # not written by package_model: never trusted
        return ModelPackage(root, stages, str(info["best_stage_name"]), ObjectType(int(info["object_type"])),
                            tuple(info["executor_config"].get("class_names", [])))
    except (OSError, UnsafeOutput, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
        return None


def install_model(pkg: ModelPackage, in_dir: Path, stage: str, release: Release) -> list[str]:
    """Extract one stage into /in/models like ``prepare_model``; returns the container paths for config.yaml."""
    models = in_dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    if release.per_stage_models:
        shutil.copyfile(pkg.root / "ymir-info.yaml", models / "ymir-info.yaml")
    else:  # 1.1's package info (utils.ModelStorage.as_dict), not the 2.x one
        info = guard.load_yaml(guard.read_text(pkg.root, "ymir-info.yaml", guard.CAPS["result-yaml"]))
        write_yaml(models / "ymir-info.yaml", {
            "models": list(pkg.stages[stage]),
            "executor_config": {**info.get("executor_config", {}), "class_names": list(pkg.class_names)},
            "task_context": info.get("task_context", {}), "class_names": list(pkg.class_names)})
    paths = []
    for name in pkg.stages[stage]:
        if release.per_stage_models and not pkg.legacy:
            target, cpath = models / stage / name, f"/in/models/{stage}/{name}"
        else:  # 1.1 packages extract flat, while config may still name the stage directory (contract §9.11)
            target, cpath = models / name, f"/in/models/{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        guard.clone_file(pkg.root / stage / name, target)  # sparse-aware: holes stay holes
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
    asset_cache: Path | None = None  # /in/assets -> this host folder (2.x), mounted at its own path
    tensorboard_host: Path | None = None  # /out/tensorboard -> this host folder (2.x training)

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    def retry_tensorboard(self, attempt: int) -> Path | None:
        """A fresh tensorboard host folder for a diagnosis retry (each retry gets its own /out)."""
        return None if self.tensorboard_host is None else self.root / f"tensorboard-host-retry-{attempt}"

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
    class_names: tuple[str, ...] = CLASS_NAMES  # the training's selection, in config.yaml order
    label_names: tuple[str, ...] = LABEL_NAMES  # the dataset's labels in label-id order; the scenes draw every one
    test: int = 0  # images in the dataset's test split (test-index.tsv, 2.x: 1.1 has no test split)
    edge_cases: bool = False
    empty_val: bool = False
    corrupt_train_image: bool = False
    flat_candidate_names: bool = False
    extra_class_names: tuple[str, ...] = ()  # in class_names, absent from the data (a class with no examples)
    string_values: bool = False  # template values as the web UI returns them after an edit: strings

    @property
    def labels(self) -> tuple[str, ...]:
        """The label store: ``label_names``, then any selected class it lacks (the platform refuses a training on a
        class name it does not know, so a selection is always a subset of the store)."""
        return (*self.label_names, *(c for c in self.class_names if c not in self.label_names))


def write_ground_truth(path: Path, candidates: list[str], scenes: list[datasets.Scene]) -> None:
    """What is really in each candidate image: basename -> size and objects (class name, [x, y, w, h])."""
    truth = {
        os.path.basename(cpath): {"width": sc.width, "height": sc.height,
                                  "objects": [{"class_name": o.class_name, "box": list(o.box)} for o in sc.objects]}
        for cpath, sc in zip(candidates, scenes)
    }
    path.write_text(json.dumps(truth, sort_keys=True))


def _fresh(root: Path) -> None:
    remove_tree_or_raise(root)
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()


def build_training(root: Path, *, template: dict[str, Any], object_type: ObjectType, export_format: str,
                   data: DatasetSpec, release: Release = LATEST, gpu_ids: tuple[str, ...] = (),
                   pretrained: tuple[ModelPackage, str] | None = None, label: str = "training",
                   overrides: dict[str, Any] | None = None, hyper: tuple[HyperParam, ...] = (),
                   scenes: tuple[list[datasets.Scene], list[datasets.Scene]] | None = None) -> Workspace:
    """A training workspace; ``scenes`` (train, val) replaces the synthetic data (the fuzzer's inputs)."""
    _fresh(root)
    shape = TaskShape.of(Task.TRAINING)
    task_id = task_id_for(label, data.seed)
    labels = list(data.labels)
    test: list[datasets.Scene] = []
    if scenes is not None:  # the fuzzer's inputs: no test split
        train, val = list(scenes[0]), list(scenes[1])
    else:
        test_size = data.test if release >= Release(2, 0) else 0  # 1.1 exports no test split
        drawn = list(datasets.generate_scenes(data.seed, data.train + data.val + test_size, object_type, labels))
        train, val, test = drawn[: data.train], drawn[data.train:data.train + data.val], drawn[data.train + data.val:]
    if data.edge_cases:
        train = train + list(datasets.edge_case_scenes(data.seed, object_type, labels))
    if data.empty_val:
        val = []
    if data.corrupt_train_image:
        train = train + [datasets.corrupt_scene(data.seed)]
    in_dir = root / "in"
    try:
        summary = datasets.export_training_set(in_dir, train=train, val=val, test=test,
                                               class_names=list(data.class_names), label_names=labels,
                                               export_format=export_format, release=release)
    except ValueError as exc:
        raise WorkspaceError(f"cannot export a {object_type.name} dataset as {export_format!r}: {exc}") from None
    if release >= Release(2, 0):  # 1.1 creates /in/models only to extract a pretrained model
        (in_dir / "models").mkdir(exist_ok=True)
    pretrained_paths = install_model(pretrained[0], in_dir, pretrained[1], release) if pretrained else None
    env = env_yaml(task_id, shape, release)
    # the user's edits in the web form (--ymir-set), then what the UI drops, then the platform's keys (§3.3)
    tpl = ui_filtered(edit_template(template, Task.TRAINING, hyper), Task.TRAINING)
    if data.string_values:
        tpl = {k: (str(v) if isinstance(v, (bool, int, float)) else v) for k, v in tpl.items()}
    cfg = config_yaml(tpl, task_id=task_id, class_names=[*data.class_names, *data.extra_class_names],
                      gpu_ids=gpu_ids, object_type=object_type, release=release, shape=shape,
                      pretrained=pretrained_paths, overrides={"export_format": export_format, **(overrides or {})})
    write_yaml(in_dir / "env.yaml", env)
    write_yaml(in_dir / "config.yaml", cfg)
    cache, tensorboard = _platform_links(root, data, object_type, release, tensorboard=True)
    prepare_out(root / "out", task_id, tensorboard, chmod=release >= Release(2, 0))
    return Workspace(root, shape, object_type, task_id, cfg, env, export_format, summary=summary,
                     asset_cache=cache, tensorboard_host=tensorboard)


def build_mining_infer(root: Path, *, shape: TaskShape, templates: dict[Task, dict[str, Any]],
                       object_type: ObjectType, model: ModelPackage, stage: str, data: DatasetSpec,
                       release: Release = LATEST, gpu_ids: tuple[str, ...] = (), label: str = "infer",
                       overrides: dict[str, Any] | None = None, hyper: tuple[HyperParam, ...] = (),
                       candidate_scenes: list[datasets.Scene] | None = None) -> Workspace:
    """Mining, infer, or both in one run (config from the mining template when mining, else the infer one);
    ``candidate_scenes`` replaces the synthetic candidates (the fuzzer's inputs)."""
    _fresh(root)
    task_id = task_id_for(label, data.seed)
    if candidate_scenes is not None:
        scenes = list(candidate_scenes)
    else:
        scenes = list(datasets.generate_scenes(data.seed + CANDIDATE_SEED_OFFSET, data.candidates, object_type,
                                               list(data.labels)))
    if data.edge_cases:  # candidates the platform can produce but images often mishandle (IN-06)
        edge = datasets.edge_case_scenes(data.seed, object_type, list(data.labels))
        scenes += [sc for sc in edge if sc.ext in ("unknown", "bmp") or min(sc.width, sc.height) <= 8]
    in_dir = root / "in"
    candidates = datasets.export_candidates(in_dir, scenes, flat_names=data.flat_candidate_names, release=release)
    write_ground_truth(root / GROUND_TRUTH, candidates, scenes)
    if release >= Release(2, 0):  # 1.1 mounts only assets, models and three files into /in (contract §1.3)
        for sub in ("annotations", "predictions"):
            (in_dir / sub).mkdir(exist_ok=True)
    model_paths = install_model(model, in_dir, stage, release)
    # What the web UI sends (contract §3.3): the mining template for a mining task (also mining+infer), the
    # infer template for dataset and single-image infer. The doc's "merge of both" is not what the code does.
    task = Task.MINING if shape.run_mining else Task.INFER
    env = env_yaml(task_id, shape, release)
    cfg = config_yaml(ui_filtered(edit_template(templates.get(task, {}), task, hyper), task), task_id=task_id,
                      class_names=list(model.class_names), gpu_ids=gpu_ids, object_type=object_type,
                      release=release, shape=shape, model_params=model_paths, overrides=overrides)
    write_yaml(in_dir / "env.yaml", env)
    write_yaml(in_dir / "config.yaml", cfg)
    cache = None
    if not data.flat_candidate_names:  # single-image infer copies the uploads flat into a folder of its own
        cache, _ = _platform_links(root, data, object_type, release, tensorboard=False)
        if cache is not None:  # mir mining's work index: host paths, not for executors (contract §3.1)
            host = {c: str(cache.resolve() / c.removeprefix("/in/assets/")) for c in candidates}
            (in_dir / "candidate-src-index.tsv").write_text("".join(f"{host[c]}\n" for c in candidates))
    prepare_out(root / "out", task_id, chmod=release >= Release(2, 0), model_dirs=release >= Release(2, 0))
    return Workspace(root, shape, object_type, task_id, cfg, env, None, candidates, asset_cache=cache)


DECOY_SEED_OFFSET = 104729
DECOYS = 4


def _platform_links(root: Path, data: DatasetSpec, object_type: ObjectType, release: Release,
                    tensorboard: bool) -> tuple[Path | None, Path | None]:
    """From 2.0 on, /in/assets is a link into the user's shared asset cache and a training's /out/tensorboard
    a link to the platform's TensorBoard folder (contract §1.4); 1.1 mounted plain folders. Returns the host
    folders (asset cache, tensorboard) or None where this release uses plain folders."""
    if release < Release(2, 0):
        return None, None
    decoys = list(datasets.generate_scenes(data.seed + DECOY_SEED_OFFSET, DECOYS, object_type, list(data.labels)))
    cache = root / "asset-cache"
    cache_assets(root / "in", cache, decoys)
    return cache, (root / "tensorboard-host" if tensorboard else None)
