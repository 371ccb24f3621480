"""/in differential: the suite's workspace builder against the platform's own exporter and config/env generators.

One synthetic dataset, built twice: by ``ymir_conformance.workspace`` (via ``ymir_conformance.datasets``) and by
the platform's ``mir`` code of the release under test (oracle.py). Every file, key, type, order, path form, mode and
symlink is compared; the only differences allowed are those in allowed.yaml.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ymir_conformance import datasets
from ymir_conformance.datasets.layout import Layout
from ymir_conformance.datasets.writers.coco import DATE_CAPTURED, encode_rle
from ymir_conformance.model import ObjectType, Task, TaskShape
from ymir_conformance.platform import Release
from ymir_conformance.workspace import (DatasetSpec, ModelPackage, build_mining_infer, build_training,
                                        ui_filtered)

from .kit import compare_trees, get_oracle, judge_diffs, snapshot

pytestmark = pytest.mark.differential

SEED = 11
# The workspace's default labels: training selects CLASS_NAMES of the label store LABEL_NAMES (indexes differ from
# label ids, one label unselected, its objects left unlabelled in the images); a test split on 2.x.
DATA = DatasetSpec(seed=SEED, train=5, val=3, test=2, candidates=4)
TEMPLATES: dict[Task, dict[str, Any]] = {
    Task.TRAINING: {"epochs": 10, "shm_size": "16G", "learning_rate": 0.01, "empty_one": "", "export_format": "ark:raw"},
    Task.MINING: {"mining_algorithm": "aldd", "batch_size": 4, "shm_size": "16G", "zero": 0},
    Task.INFER: {"conf_threshold": 0.25, "batch_size": 8, "shm_size": "16G"},
}
# The user's label store (DATA.labels, label ids 0.. by creation) lists labels in another order than the training
# class_names, and one label the training does not select; the platform lists COCO categories by label id.
FORMATS_23 = [("det-ark", ObjectType.DETECTION), ("det-voc", ObjectType.DETECTION),
              ("det-ls-json", ObjectType.DETECTION), ("seg-coco", ObjectType.SEMANTIC_SEGMENTATION),
              ("seg-coco", ObjectType.INSTANCE_SEGMENTATION), ("none", ObjectType.DETECTION)]
SHAPES = {"infer": TaskShape.of(Task.INFER), "mining": TaskShape.of(Task.MINING),
          "mining+infer": TaskShape.of(Task.MINING, Task.INFER)}


def _release(oracle_release: str) -> Release:
    return Release.parse(".".join(oracle_release.split(".")[:2]))


def _asset_requests(in_dir: Path, scenes: list[datasets.Scene], tvt: list[str],
                    release: Release = Release(2, 3)) -> list[dict[str, Any]]:
    stamp = datetime.strptime(DATE_CAPTURED, "%Y-%m-%d %H:%M:%S").timestamp()  # local time, as the platform prints
    reqs = []
    seen = set()
    for scene, split in zip(scenes, tvt):
        if scene.sha1 in seen:
            continue
        seen.add(scene.sha1)
        src = in_dir / "assets" / Layout(release).asset_relpath(scene)
        objects = []
        for obj in scene.objects:
            o: dict[str, Any] = {"class_name": obj.class_name, "box": list(obj.box), "area": obj.area, "iscrowd": 0}
            if obj.polygon is not None:
                o["polygon"] = [int(v) for v in obj.polygon]
            elif obj.mask is not None:
                o["mask"] = encode_rle(obj.mask)["counts"]
            objects.append(o)
        reqs.append({"sha1": scene.sha1, "ext": scene.ext, "width": scene.width, "height": scene.height,
                     "channels": scene.channels, "tvt": split, "timestamp": stamp, "objects": objects,
                     "src": str(src)})
    return reqs


def _offered(oracle_release: str, fmt: str, object_type: ObjectType) -> bool:
    """Whether the release can export ``fmt`` for ``object_type`` at all: 1.1 ignores export_format and always
    exports ARK detection (contract §4, commands/training.py); 2.x offer datasets.formats_for (+ 'none')."""
    release = _release(oracle_release)
    if release < Release(2, 0):
        return (fmt, object_type) == ("det-ark", ObjectType.DETECTION)
    return fmt == "none" or fmt in datasets.formats_for(object_type, release)


def oracle_params(function: str, releases: list[str]) -> tuple[str, list[Any]] | None:
    """Only the combinations each release has (conftest.pytest_generate_tests): no skips for a missing function."""
    if function == "test_training_in":
        return "oracle_release,fmt,object_type", [
            pytest.param(r, f, o, id=f"{r}-{f}-{o.name.lower()}")
            for r in releases for f, o in FORMATS_23 if _offered(r, f, o)]
    return None


def test_training_in(oracle_release: str, fmt: str, object_type: ObjectType, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    release = _release(oracle_release)
    export_format = f"{fmt}:raw"
    ws = build_training(tmp_path / "suite", template=TEMPLATES[Task.TRAINING], object_type=object_type,
                        export_format=export_format, data=DATA, release=release)
    test = 0 if oracle.legacy else DATA.test  # 1.1 has no test split
    scenes = list(datasets.generate_scenes(DATA.seed, DATA.train + DATA.val + test, object_type, list(DATA.labels)))
    tvt = ["train"] * DATA.train + ["val"] * DATA.val + ["test"] * test
    unselected = {o.class_name for sc in scenes for o in sc.objects} - set(DATA.class_names)
    assert unselected, "the dataset must hold objects of a label the training does not select"
    executor_config = {k: v for k, v in ws.config.items() if k != "task_id"}
    work = tmp_path / "platform"
    oracle.call("build_training", work_dir=str(work), media_dir=str(tmp_path / "media"),
                asset_cache_dir=str(work / "asset-cache"), tensorboard_dir=str(work / "tensorboard-host"),
                assets=_asset_requests(ws.in_dir, scenes, tvt, release), label_names=list(DATA.labels),
                executor_config=executor_config, task_id=ws.task_id, pretrained=[])
    _check_platform_data(work / "in", fmt, test, oracle.legacy)
    ours, theirs = snapshot(ws.in_dir), snapshot(work / "in")
    if oracle.legacy:  # 1.1.0 keeps each split's asset ids in a Python set: line order is hash order, per process
        for snap in (ours, theirs):
            for rel in ("train-index.tsv", "val-index.tsv"):
                if rel in snap:
                    e = snap[rel]
                    snap[rel] = e.__class__(e.kind, e.mode, e.target, b"".join(sorted(e.data.splitlines(True))))
    diffs = compare_trees(ours, theirs)
    diffs += [d.__class__("out/" + d.path, d.aspect, d.detail)
              for d in compare_trees(snapshot(ws.out_dir), snapshot(work / "out"))]
    judge_diffs(diffs, {"task": "training", "format": fmt, "release": oracle_release})


def _check_platform_data(theirs: Path, fmt: str, test: int, legacy: bool) -> None:
    """What the tree comparison covers, stated on the platform's own tree: the test split's lines, the class
    indexes (not label ids) of the selection, and the VOC image_quality of the gt and predictions passes."""
    if not legacy and fmt != "none":  # without annotations every split's index is empty (idx-assets lists all)
        lines = (theirs / "test-index.tsv").read_text().splitlines()
        assert len(lines) == test and all(len(line.split("\t")) == 2 for line in lines), lines
        assert len((theirs / "pred-test-index.tsv").read_text().splitlines()) == test
    if fmt == "det-ark":
        ids = {int(line.split(",")[0]) for p in (theirs / "annotations").rglob("*.txt") for line in p.read_text().splitlines()}
        assert ids and ids <= set(range(len(DATA.class_names))), ids  # indexes in class_names, never label ids
    if fmt == "det-voc":  # image_cks as the VOC import leaves it: -1 when the XML has none; 0 (no cks) for predictions
        gt = {p.read_text().split("<image_quality>")[1][:7] for p in (theirs / "annotations").rglob("*.xml")}
        pred = {p.read_text().split("<image_quality>")[1][:6] for p in (theirs / "predictions").rglob("*.xml")}
        assert (gt, pred) == ({"-1.0000"}, {"0.0000"}), (gt, pred)
        names = {n for p in (theirs / "annotations").rglob("*.xml") for n in p.read_text().split("<name>")[1:]}
        assert {n.split("<")[0] for n in names} <= set(DATA.class_names)


def _platform_executor_config(shape: TaskShape, suite_config: dict[str, Any]) -> dict[str, Any]:
    """What the controller hands mir for a mining/infer task (contract §3.3): the web UI sends the *mining* template
    for mining (also with infer) and the *infer* template for dataset-infer, plus the controller's keys."""
    task = Task.MINING if shape.run_mining else Task.INFER
    cfg = ui_filtered(TEMPLATES[task], task)
    for key in ("gpu_id", "gpu_count", "openpai_enable", "object_type"):
        if key in suite_config:
            cfg[key] = suite_config[key]
    return cfg


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_mining_infer_in(oracle_release: str, shape_name: str, tmp_path: Path) -> None:
    oracle = get_oracle(oracle_release)
    release = _release(oracle_release)
    shape = SHAPES[shape_name]
    object_type = ObjectType.DETECTION
    # 2.x: a stage package (<stage>/<file>); 1.1: flat model files (utils.prepare_model extracts them flat)
    stage = "default_best_stage" if oracle.legacy else "epoch20"
    files = ("best.pt", "config.py") if oracle.legacy else ("epoch20.pt", "config.py")
    pkg_root = tmp_path / "package"
    (pkg_root / stage).mkdir(parents=True)
    (pkg_root / stage / files[0]).write_bytes(b"weights")
    (pkg_root / stage / "config.py").write_text("cfg = 1\n")
    (pkg_root / "ymir-info.yaml").write_text(f"best_stage_name: {stage}\n")
    pkg = ModelPackage(pkg_root, {stage: files}, stage, object_type, tuple(DATA.class_names), legacy=oracle.legacy)
    ws = build_mining_infer(tmp_path / "suite", shape=shape, templates=TEMPLATES, object_type=object_type, model=pkg,
                            stage=stage, data=DATA, release=release)
    from ymir_conformance.workspace import CANDIDATE_SEED_OFFSET
    scenes = list(datasets.generate_scenes(DATA.seed + CANDIDATE_SEED_OFFSET, DATA.candidates, object_type,
                                           list(DATA.labels)))
    work = tmp_path / "platform"
    if oracle.legacy:
        _compare_mining_infer_110(oracle, ws, scenes, shape, shape_name, pkg, work, tmp_path)
        return
    oracle.call("build_mining_infer", work_dir=str(work), media_dir=str(tmp_path / "media"),
                asset_cache_dir=str(work / "asset-cache"),
                assets=_asset_requests(ws.in_dir, scenes, ["test"] * len(scenes), release),
                label_names=list(DATA.labels), class_names=list(pkg.class_names),
                executor_config=_platform_executor_config(shape, ws.config), task_id=ws.task_id,
                stage="epoch20", model_files=list(pkg.stages["epoch20"]),
                run_mining=shape.run_mining, run_infer=shape.run_infer)
    skip = ("models", "models/*")  # model extraction (models.prepare_model) is compared by the packaging tests
    diffs = compare_trees(snapshot(ws.in_dir, skip), snapshot(work / "in", skip))
    diffs += [d.__class__("out/" + d.path, d.aspect, d.detail)
              for d in compare_trees(snapshot(ws.out_dir), snapshot(work / "out"))]
    judge_diffs(diffs, {"task": shape_name, "format": "none", "release": oracle_release})


def _compare_mining_infer_110(oracle: Any, ws: Any, scenes: list[datasets.Scene], shape: TaskShape,
                              shape_name: str, pkg: ModelPackage, work: Path, tmp_path: Path) -> None:
    """1.1.0 mounts five things, not /in: the oracle's ``view`` is what its container sees under /in."""
    stage = pkg.best_stage
    reply = oracle.call("build_mining_infer", work_dir=str(work), media_dir=str(tmp_path / "media"),
                        assets=_asset_requests(ws.in_dir, scenes, ["test"] * len(scenes), Release(1, 1)),
                        label_names=list(DATA.labels), class_names=list(pkg.class_names),
                        executor_config=_platform_executor_config(shape, ws.config), task_id=ws.task_id,
                        model_files={n: str(pkg.root / stage / n) for n in pkg.stages[stage]},
                        run_mining=shape.run_mining, run_infer=shape.run_infer)
    ours, theirs = snapshot(ws.in_dir), snapshot(Path(reply["view"]))
    for snap in (ours, theirs):  # 1.1.0 exports a Python set of asset ids: index line order is hash order
        e = snap.get("candidate-index.tsv")
        if e is not None:
            snap["candidate-index.tsv"] = e.__class__(e.kind, e.mode, e.target, b"".join(sorted(e.data.splitlines(True))))
    diffs = compare_trees(ours, theirs)
    diffs += [d.__class__("out/" + d.path, d.aspect, d.detail)
              for d in compare_trees(snapshot(ws.out_dir), snapshot(work / "out"))]
    judge_diffs(diffs, {"task": shape_name, "format": "none", "release": oracle.release})


def test_oracle_is_the_release(oracle_release: str) -> None:
    oracle = get_oracle(oracle_release)
    assert oracle.call("version")["version"] == oracle_release

