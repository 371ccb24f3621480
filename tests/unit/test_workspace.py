"""/in and /out exactly as the platform writes them (contract §1.13, §3.2, §3.3)."""
from __future__ import annotations

import stat
from pathlib import Path

import yaml

from ymir_conformance.model import INFER, MINING_INFER, TRAINING, ObjectType, Task
from ymir_conformance.platform import Release
from ymir_conformance.workspace import (ModelPackage, config_yaml, env_yaml, install_model, package_model,
                                        prepare_out, task_id_for, ui_filtered, write_yaml)


def test_training_env_matches_the_platform_example_for_2_5() -> None:
    env = env_yaml("t0000001000002ebb7f11653630774", TRAINING, Release(2, 5))
    expected = yaml.safe_load("""
input: {annotations_dir: /in/annotations, assets_dir: /in/assets, candidate_index_file: '', config_file: /in/config.yaml,
        models_dir: /in/models, root_dir: /in, training_index_file: /in/train-index.tsv, val_index_file: /in/val-index.tsv}
manifest_file: /img-man/manifest.yaml
output: {executor_log_file: /out/ymir-executor-out.log, infer_result_file: /out/infer-result.json,
         mining_result_file: /out/result.tsv, models_dir: /out/models, monitor_file: /out/monitor.txt, root_dir: /out,
         tensorboard_dir: /out/tensorboard, training_result_file: /out/models/result.yaml}
protocol_version: 1.1.0
run_infer: false
run_mining: false
run_training: true
task_id: t0000001000002ebb7f11653630774
""")
    assert env == expected


def test_env_yaml_is_written_with_sorted_keys(tmp_path: Path) -> None:
    write_yaml(tmp_path / "env.yaml", env_yaml("t1", MINING_INFER))
    top_keys = [ln.split(":")[0] for ln in (tmp_path / "env.yaml").read_text().splitlines() if not ln.startswith(" ")]
    assert top_keys == sorted(top_keys)
    env = yaml.safe_load((tmp_path / "env.yaml").read_text())
    assert env["run_mining"] is True and env["run_infer"] is True and env["input"]["training_index_file"] == ""


def test_old_releases_lack_protocol_manifest_and_log_keys() -> None:
    env_11 = env_yaml("t", TRAINING, Release(1, 1))
    assert "protocol_version" not in env_11 and "manifest_file" not in env_11
    assert "executor_log_file" not in env_11["output"]
    env_20 = env_yaml("t", TRAINING, Release(2, 0))
    assert env_20["protocol_version"] == "1.1.0" and "manifest_file" not in env_20


def test_training_config_reserved_keys_cpu_mode_2_5() -> None:
    cfg = config_yaml({"epochs": 3, "gpu_id": "7", "model_params_path": ["x"]}, task_id="t1",
                      class_names=[" Cat", "DOG"], gpu_ids=(), object_type=ObjectType.DETECTION,
                      release=Release(2, 5), shape=TRAINING)
    assert cfg == {"epochs": 3, "task_id": "t1", "class_names": ["cat", "dog"], "gpu_id": "", "gpu_count": 0,
                   "openpai_enable": False, "object_type": 2}


def test_infer_config_with_two_gpus_and_object_type_only_from_2_4() -> None:
    kw = dict(task_id="t", class_names=["a"], gpu_ids=("3", "5"), object_type=ObjectType.INSTANCE_SEGMENTATION,
              shape=INFER, model_params=["/in/models/s/m.bin"], pretrained=["/in/models/s/m.bin"])
    cfg = config_yaml({}, release=Release(2, 3), **kw)  # type: ignore[arg-type]
    assert cfg["gpu_id"] == "0,1" and cfg["gpu_count"] == 2 and "object_type" not in cfg
    assert cfg["run_infer"] is True and cfg["run_mining"] is False and "pretrained_model_params" not in cfg
    assert config_yaml({}, release=Release(2, 4), **kw)["object_type"] == 4  # type: ignore[arg-type]


def test_ui_drops_falsy_values_for_mining_and_empty_for_training() -> None:
    tpl = {"a": 0, "b": "", "c": False, "d": "x", "e": 1}
    assert ui_filtered(tpl, Task.TRAINING) == {"a": 0, "c": False, "d": "x", "e": 1}
    assert ui_filtered(tpl, Task.MINING) == {"d": "x", "e": 1}


def test_out_is_prepared_like_the_platform(tmp_path: Path) -> None:
    prepare_out(tmp_path, "t1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "monitor.txt", "tensorboard",
                                                          "ymir-executor-out.log"]
    line = (tmp_path / "monitor.txt").read_text()
    fields = line.rstrip("\n").split("\t")
    assert fields[0] == "t1" and fields[2:] == ["0.00", "1", "0"]
    for p in [tmp_path / "models", tmp_path / "monitor.txt"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o777


def test_task_ids_are_thirty_characters_and_stable() -> None:
    assert len(task_id_for("training-det-voc", 0)) == 30
    assert task_id_for("a", 1) == task_id_for("a", 1) != task_id_for("a", 2)


def _out_with_stages(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "models" / "epoch_1").mkdir(parents=True)
    (out / "models" / "epoch_2").mkdir()
    (out / "models" / "epoch_1" / "w.bin").write_bytes(b"1")
    (out / "models" / "epoch_2" / "w.bin").write_bytes(b"2")
    (out / "models" / "shared.yaml").write_text("k: v\n")
    (out / "models" / "result.yaml").write_text(yaml.safe_dump({
        "best_stage_name": "epoch_2",
        "model_stages": {s: {"stage_name": s, "files": ["w.bin", "shared.yaml"], "timestamp": 1, "mAP": 0.5}
                         for s in ("epoch_1", "epoch_2")}}))
    return out


def test_model_package_and_install_per_stage(tmp_path: Path) -> None:
    pkg = package_model(_out_with_stages(tmp_path), tmp_path / "pkg", {"class_names": ["a"]}, ObjectType.DETECTION)
    assert isinstance(pkg, ModelPackage) and pkg.best_stage == "epoch_2" and pkg.non_best_stage() == "epoch_1"
    assert (tmp_path / "pkg" / "epoch_1" / "shared.yaml").exists()  # shared files are copied into each stage
    in_dir = tmp_path / "in"
    paths = install_model(pkg, in_dir, "epoch_2", Release(2, 5))
    assert paths == ["/in/models/epoch_2/w.bin", "/in/models/epoch_2/shared.yaml"]
    assert (in_dir / "models" / "epoch_2" / "w.bin").read_bytes() == b"2"
    assert yaml.safe_load((in_dir / "models" / "ymir-info.yaml").read_text())["best_stage_name"] == "epoch_2"


def test_model_package_refuses_escapes_and_symlinks(tmp_path: Path) -> None:
    out = _out_with_stages(tmp_path)
    (out / "models" / "epoch_2" / "w.bin").unlink()
    (out / "models" / "epoch_2" / "w.bin").symlink_to("/etc/passwd")
    result = yaml.safe_load((out / "models" / "result.yaml").read_text())
    result["model_stages"]["epoch_1"]["files"] = ["../../../etc/passwd", "/etc/passwd"]
    (out / "models" / "result.yaml").write_text(yaml.safe_dump(result))
    pkg = package_model(out, tmp_path / "pkg", {}, ObjectType.DETECTION)
    assert pkg is not None and pkg.stages == {"epoch_2": ("shared.yaml",)}


def test_model_package_none_for_garbage(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    for text in ("", "- a list\n", "model_stages: 3\n", ": : :\n\t"):
        (out / "models" / "result.yaml").write_text(text)
        assert package_model(out, tmp_path / "pkg", {}, ObjectType.DETECTION) is None


def _ark_rows(in_dir: Path, index: str) -> list[list[str]]:
    rows = []
    for line in (in_dir / index).read_text().splitlines():
        anno = line.split("\t")[1].removeprefix("/in/")
        rows += [r.split(", ") for r in (in_dir / anno).read_text().splitlines()]
    return rows


def test_training_selects_a_subset_of_the_labels_by_index(tmp_path: Path) -> None:
    """The platform trains on the classes the user selects: config class_names is the selection, each object is
    exported with its index there (never its label id), and the objects of unselected labels stay in the images,
    unlabelled; the suite's ground truth keeps everything the images hold."""
    from ymir_conformance import datasets
    from ymir_conformance.workspace import CLASS_NAMES, LABEL_NAMES, DatasetSpec, build_training

    data = DatasetSpec(seed=3, train=12, val=4)
    assert set(CLASS_NAMES) < set(LABEL_NAMES)
    assert all(CLASS_NAMES.index(c) != LABEL_NAMES.index(c) for c in CLASS_NAMES)  # indexes are not label ids
    ws = build_training(tmp_path / "ws", template={}, object_type=ObjectType.DETECTION, export_format="det-ark:raw",
                        data=data, release=Release(2, 5))
    assert ws.config["class_names"] == list(CLASS_NAMES)
    scenes = list(datasets.generate_scenes(3, 16, ObjectType.DETECTION, list(LABEL_NAMES)))
    drawn = [o.class_name for sc in scenes for o in sc.objects]
    unselected = sum(1 for c in drawn if c not in CLASS_NAMES)
    assert unselected, "the images must hold objects of the label that is not selected"
    rows = _ark_rows(ws.in_dir, "train-index.tsv") + _ark_rows(ws.in_dir, "val-index.tsv")
    assert len(rows) == len(drawn) - unselected == ws.summary.objects
    expected = sorted(CLASS_NAMES.index(c) for c in drawn if c in CLASS_NAMES)
    assert sorted(int(r[0]) for r in rows) == expected


def test_test_split_is_exported_on_2x_and_not_on_1_1(tmp_path: Path) -> None:
    from ymir_conformance.workspace import DatasetSpec, build_training

    data = DatasetSpec(seed=4, train=4, val=2, test=3)
    ws = build_training(tmp_path / "a", template={}, object_type=ObjectType.DETECTION, export_format="det-voc:raw",
                        data=data, release=Release(2, 3))
    test_lines = (ws.in_dir / "test-index.tsv").read_text().splitlines()
    assert len(test_lines) == 3 and all(ln.split("\t")[1].startswith("/in/annotations/") for ln in test_lines)
    assert len((ws.in_dir / "pred-test-index.tsv").read_text().splitlines()) == 3
    assert ws.summary.images == {"train": 4, "val": 2, "test": 3}
    ws11 = build_training(tmp_path / "b", template={}, object_type=ObjectType.DETECTION, export_format="",
                          data=data, release=Release(1, 1))
    assert not (ws11.in_dir / "test-index.tsv").exists() and ws11.summary.images["test"] == 0
