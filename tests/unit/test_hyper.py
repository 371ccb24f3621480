"""--ymir-set (hyper-parameters as a platform user edits them) and --ymir-dataset-size."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ymir_conformance.errors import SettingsError
from ymir_conformance.hyper import (DatasetSize, HyperParam, describe, edit_template, form_edits, parse_dataset_size,
                                    parse_sets)
from ymir_conformance.model import MINING, ObjectType, Task
from ymir_conformance.options import Settings
from ymir_conformance.platform import Release
from ymir_conformance.report import report_data
from ymir_conformance.report.html import render_certificate, reproduce_command
from ymir_conformance.verdict import Ledger
from ymir_conformance.workspace import (DatasetSpec, ModelPackage, build_mining_infer, build_training,
                                        package_model)

W = "--ymir-set"


def test_values_are_yaml_scalars_with_scopes() -> None:
    got = parse_sets(["training.epochs=1", "mining.batch_size=2", "lr=0.5", "infer.name='1'", "flag=true",
                      "empty=", "quoted=''", "infer.conf = 0.25", "model.depth=3"], W)
    assert got == (HyperParam("training", "epochs", 1), HyperParam("mining", "batch_size", 2),
                   HyperParam(None, "lr", 0.5), HyperParam("infer", "name", "1"), HyperParam(None, "flag", True),
                   HyperParam(None, "empty", None), HyperParam(None, "quoted", ""),
                   HyperParam("infer", "conf", 0.25),
                   HyperParam(None, "model.depth", 3))  # not a scope: a dotted key for every template
    assert isinstance(got[0].value, int) and not isinstance(got[0].value, bool)
    assert describe(got[:4]) == "training.epochs=1, mining.batch_size=2, lr=0.5, infer.name='1'"
    assert parse_sets(None, W) == () and parse_sets("epochs=3", W) == (HyperParam(None, "epochs", 3),)
    assert parse_sets(["date=2001-01-01"], W) == (HyperParam(None, "date", "2001-01-01"),)  # what was typed


@pytest.mark.parametrize(("value", "message"), [
    ("epochs", "is not KEY=VALUE"),
    ("=1", "is not KEY=VALUE"),
    ("training.=1", "has no usable key"),
    ("lr=[1, 2]", "is a list, not a scalar"),
    ("lr={a: 1}", "is a dict, not a scalar"),
    ("lr=[1", "is not a YAML scalar"),
    ("lr=&a [*a]", "not a YAML scalar"),
])
def test_malformed_and_non_scalar_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        parse_sets([value], W)


@pytest.mark.parametrize("key", ["task_id", "class_names", "gpu_id", "pretrained_model_params", "model_params_path",
                                 "run_infer", "run_mining", "object_type"])
def test_platform_reserved_keys_are_refused(key: str) -> None:
    for spelled in (f"{key}=1", f"training.{key}=1", f"mining.{key}=1"):
        with pytest.raises(SettingsError, match=f"--ymir-set: '{key}' is a platform-reserved config.yaml key"):
            parse_sets([spelled], W)


def test_gpu_count_points_to_ymir_gpus() -> None:
    with pytest.raises(SettingsError, match="'gpu_count' is a platform-reserved .* use --ymir-gpus"):
        parse_sets(["gpu_count=2"], W)


def test_scoped_edits_win_over_unscoped_ones_and_the_last_one_wins() -> None:
    params = parse_sets(["training.epochs=5", "epochs=2", "batch=4", "epochs=3", "mining.batch=8"], W)
    assert form_edits(params, Task.TRAINING) == {"epochs": 5, "batch": 4}
    assert form_edits(params, Task.MINING) == {"epochs": 3, "batch": 8}
    assert form_edits(params, Task.INFER) == {"epochs": 3, "batch": 4}
    assert edit_template({"epochs": 10, "lr": 0.1}, Task.TRAINING, params) == {"epochs": 5, "lr": 0.1, "batch": 4}


def test_dataset_size() -> None:
    assert parse_dataset_size(None, "x") is None and parse_dataset_size(" ", "x") is None
    assert parse_dataset_size("60", "x") == DatasetSize(60, 20, 20)
    assert parse_dataset_size("2", "x") == DatasetSize(2, 1, 1)
    size = parse_dataset_size("train=100, candidates=30", "x")
    assert size == DatasetSize(train=100, candidates=30) and str(size) == "train=100,candidates=30"
    assert size.apply(24, 8, 8) == (100, 8, 30)
    assert parse_dataset_size("val=0", "x") == DatasetSize(val=0)
    for bad, message in [("many", "size 'many' is not an integer"), ("0", "size 0 must be between 1"),
                         ("train=0", "train 0 must be between 1"), ("test=3", "'test=3' is not one of"),
                         ("train=1e9", "not an integer")]:
        with pytest.raises(SettingsError, match=message):
            parse_dataset_size(bad, "--ymir-dataset-size")


# -- placement: the user's edits, then the UI's filtering, then the platform's keys (contract §3.3) -------------

def _training_config(tmp_path: Path, template: dict[str, object], sets: list[str]) -> dict[str, object]:
    ws = build_training(tmp_path / "ws", template=template, object_type=ObjectType.DETECTION,
                        export_format="ark:raw", data=DatasetSpec(train=2, val=1), release=Release(2, 5),
                        hyper=parse_sets(sets, W))
    on_disk = yaml.safe_load((ws.in_dir / "config.yaml").read_text())
    assert on_disk == ws.config
    return dict(on_disk)


def test_training_edits_go_before_the_ui_filter_and_the_platform_keys(tmp_path: Path) -> None:
    template = {"epochs": 10, "lr": 0.01, "note": "keep", "shm_size": "16G", "empty": ""}
    cfg = _training_config(tmp_path, template, ["training.epochs=1", "note=''", "empty=x", "new_key=0",
                                                "mining.epochs=7"])
    assert cfg["epochs"] == 1  # edited
    assert "note" not in cfg  # edited to '': the training form drops empty values after the edit
    assert cfg["empty"] == "x"  # an empty template value filled in by the user is sent
    assert cfg["new_key"] == 0  # training keeps falsy non-empty values
    assert cfg["lr"] == 0.01 and cfg["shm_size"] == "16G"
    assert cfg["task_id"] and cfg["gpu_id"] == "" and cfg["gpu_count"] == 0 and cfg["export_format"] == "ark:raw"


def _model(tmp_path: Path) -> ModelPackage:
    out = tmp_path / "trained"
    (out / "models" / "best").mkdir(parents=True)
    (out / "models" / "best" / "w.bin").write_bytes(b"w")
    (out / "models" / "result.yaml").write_text(yaml.safe_dump({
        "best_stage_name": "best", "model_stages": {"best": {"stage_name": "best", "files": ["w.bin"]}}}))
    pkg = package_model(out, tmp_path / "pkg", {"class_names": ["person", "cat", "dog"]}, ObjectType.DETECTION)
    assert pkg is not None
    return pkg


def test_mining_edits_use_the_mining_scope_and_its_falsy_filter(tmp_path: Path) -> None:
    templates = {Task.MINING: {"batch_size": 16, "topk": 10, "mode": "aldd"}, Task.INFER: {"conf": 0.5}}
    ws = build_mining_infer(tmp_path / "ws", shape=MINING, templates=templates, object_type=ObjectType.DETECTION,
                            model=_model(tmp_path), stage="best", data=DatasetSpec(candidates=2),
                            release=Release(2, 5),
                            hyper=parse_sets(["mining.batch_size=2", "topk=0", "infer.conf=0.9", "extra=1"], W))
    cfg = yaml.safe_load((ws.in_dir / "config.yaml").read_text())
    assert cfg["batch_size"] == 2 and cfg["extra"] == 1 and cfg["mode"] == "aldd"
    assert "topk" not in cfg  # edited to 0: mining/infer forms drop falsy values after the edit
    assert "conf" not in cfg  # the infer template's edit does not reach a mining run
    assert cfg["run_mining"] is True and cfg["run_infer"] is False and cfg["model_params_path"]


def test_settings_carry_the_edits_into_report_json_and_the_certificate() -> None:
    settings = Settings(hyper_params=parse_sets(["training.epochs=1", "lr=0.5"], W),
                        dataset_size=parse_dataset_size("train=60", "x"))
    data = report_data(Ledger(), settings)
    assert data["settings"]["hyper_params"] == ["training.epochs=1", "lr=0.5"]
    assert data["settings"]["dataset_size"] == {"train": 60}
    html = render_certificate(data)
    assert "hyper-parameters set: training.epochs=1, lr=0.5" in html
    cmd = reproduce_command({k: v for k, v in data.items() if k != "command"})
    assert "--ymir-set=training.epochs=1 --ymir-set=lr=0.5 --ymir-dataset-size=train=60" in cmd
    plain = report_data(Ledger(), Settings())
    assert plain["settings"]["hyper_params"] == [] and plain["settings"]["dataset_size"] is None
    assert "hyper-parameters set" not in render_certificate(plain)


def test_option_errors_are_usage_errors(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ymir-set=gpu_count=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ymir-set: 'gpu_count' is a platform-reserved*use --ymir-gpus*"])
    result = pytester.runpytest("--ymir-dataset-size=train=x")
    result.stderr.fnmatch_lines(["ERROR: --ymir-dataset-size: train 'x' is not an integer"])
    pytester.makeini("[pytest]\nymir_set =\n    training.epochs=1\n    lr=[1]\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option ymir_set 'lr=[[]1]': '[[]1]' is a list, not a scalar*"])


def test_reaching_keeps_the_edits_of_one_template() -> None:
    """What keys the trained-model cache: unscoped and training edits, never infer/mining ones."""
    from ymir_conformance.hyper import reaching

    params = parse_sets(["epochs=2", "infer.conf_threshold=0.5", "training.batch=4", "mining.k=3"], "--ymir-set")
    assert [str(p) for p in reaching(params, Task.TRAINING)] == ["epochs=2", "training.batch=4"]
    assert [str(p) for p in reaching(params, Task.INFER)] == ["epochs=2", "infer.conf_threshold=0.5"]
