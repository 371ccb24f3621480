"""TR-01..TR-15 on canned /out/models trees, per release."""
from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from contract_kit import KitFactory, Kit
from ymir_conformance.contracts import Level, Status
from ymir_conformance.model import ObjectType


def stages(kit: Kit) -> dict[str, Any]:
    res: dict[str, Any] = yaml.safe_load((kit.out_dir / "models/result.yaml").read_text())
    return res


def test_tr01_missing(make: KitFactory) -> None:
    kit = make("training")
    (kit.out_dir / "models/result.yaml").unlink()
    assert kit.failed() == {"TR-01"}
    assert "160011" in kit.violations("TR-01")[0].message
    assert "no model" in kit.violations("TR-01", "1.1")[0].message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "key: [unclosed\n", "{}\n", "best_stage_name: x\n"])
def test_tr01_not_a_usable_mapping(make: KitFactory, text: str) -> None:
    kit = make("training")
    kit.result_yaml(text)
    assert kit.failed() == {"TR-01"}


def test_tr01_numpy_scalar_says_float(make: KitFactory) -> None:
    kit = make("training")
    kit.result_yaml("best_stage_name: e\nmodel_stages:\n  e:\n    mAP: !!python/object/apply:numpy.core.multiarray.scalar"
                    "\n    - !!python/object/apply:numpy.dtype\n      args: [f8, 0, 1]\n    - !!binary AAAA\n")
    assert kit.failed() == {"TR-01"}
    assert "float()" in kit.violations("TR-01")[0].message


def test_tr01_stage_format_on_1_1(make: KitFactory) -> None:
    kit = make("training", release="2.5")  # writes the stage format
    assert kit.failed("2.5") == set()
    assert "TR-01" in kit.failed("1.1")


def test_tr02_percentage_metric(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch20"]["mAP"] = 65.3
    kit.result_yaml(res)
    assert kit.failed() == {"TR-02"}
    assert "percentage" in kit.violations("TR-02")[0].message
    assert kit.violations("TR-02")[0].expected == "mAP: 0.653 (a float in [0, 1])"  # the value it stands for


@pytest.mark.parametrize("field,value", [("timestamp", "yesterday"), ("files", "epoch20.pt"), ("tp", -1),
                                         ("stage_name", None), ("mAR", "high")])
def test_tr02_stage_schema(make: KitFactory, field: str, value: Any) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch10"][field] = value
    kit.result_yaml(res)
    assert kit.failed() == {"TR-02"}
    v = kit.violations("TR-02")[0]
    assert v.where == f"model_stages.epoch10.{field}"
    assert v.expected and "fix" not in v.expected and v.expected.startswith(
        {"timestamp": "an integer", "files": "a list of file names", "tp": "tp: an integer >= 0",
         "stage_name": "stage_name: epoch10", "mAR": "mAR: a float in [0, 1]"}[field])


def test_tr02_map_required_on_2_0_only(make: KitFactory) -> None:
    kit = make("training", ObjectType.DETECTION)
    res = stages(kit)
    for s in res["model_stages"].values():
        s["mAR"] = s.pop("mAP")
    kit.result_yaml(res)
    assert "TR-02" in kit.failed("2.0")
    assert "TR-02" not in kit.failed("2.1")
    assert "TR-02" not in kit.failed("2.5")


def test_tr03_best_stage_not_a_key(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["best_stage_name"] = "epoch99"
    kit.result_yaml(res)
    assert kit.failed() == {"TR-03"}


def test_tr04_absolute_and_missing_files(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch20"]["files"] = ["/out/models/epoch20/epoch20.pt", "gone.pt"]
    kit.result_yaml(res)
    assert kit.failed() == {"TR-04"}
    msgs = [v.message for v in kit.violations("TR-04")]
    assert any("absolute" in m for m in msgs) and any("gone.pt" in m for m in msgs)


def test_tr04_file_in_models_root_is_found(make: KitFactory) -> None:
    kit = make("training")  # config.py lives in /out/models, listed by both stages
    assert "TR-04" not in kit.failed()


def test_tr04_dangling_symlink(make: KitFactory) -> None:
    kit = make("training")
    p = kit.out_dir / "models/epoch20/epoch20.pt"
    p.unlink()
    os.symlink("/out/weights/best.pt", p)
    assert "TR-04" in kit.failed()


def test_tr10_relative_symlink(make: KitFactory) -> None:
    kit = make("training")
    p = kit.out_dir / "models/epoch20/epoch20.pt"
    p.rename(kit.out_dir / "models/real.pt")
    os.symlink("../real.pt", p)
    assert kit.failed() == {"TR-10"}


def test_tr10_empty_files(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch10"]["files"] = []
    kit.result_yaml(res)
    assert kit.failed() == {"TR-10"}
    assert kit.finding("TR-10").level == Level.SHOULD


def test_tr05_attachments(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["attachments"] = {"deploy": ["model.onnx"]}
    kit.result_yaml(res)
    assert kit.failed() == {"TR-05"}
    kit.write("models/attachments/deploy/model.onnx", b"onnx")
    assert kit.failed() == set()
    res["attachments"] = {"deploy": "model.onnx"}
    kit.result_yaml(res)
    assert kit.failed() == {"TR-05"}


def test_tr06_evaluate_config_range_string(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["evaluate_config"] = {"iou_thr": "0.5:0.95:0.05", "conf_thr": 0.1}
    kit.result_yaml(res)
    assert kit.failed() == {"TR-06"}


def test_tr07_at_sign(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    s = res["model_stages"].pop("epoch10")
    s["stage_name"] = "epoch@10"
    res["model_stages"]["epoch@10"] = s
    kit.write("models/epoch@10/epoch10.pt", b"w")
    kit.result_yaml(res)
    assert kit.failed() == {"TR-07", "TR-08"}  # also not an identifier (SHOULD)
    assert kit.finding("TR-07").level == Level.MUST


@pytest.mark.parametrize("key", ["\ud800", "esc\x1b]0;PWNED\x07", "c1\x9b2J"])
def test_tr07_keys_no_directory_can_hold_are_findings_not_crashes(make: KitFactory, key: str) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"][key] = {**res["model_stages"]["epoch10"], "stage_name": key}
    kit.result_yaml(yaml.safe_dump(res))  # a lone surrogate is written as the YAML escape "\ud800"
    assert "TR-07" in kit.failed()
    [v] = kit.violations("TR-07")
    assert "internal error" not in v.message
    assert ("cannot be encoded" if "\ud800" in key else "control characters") in v.message
    for text in (*v.render().split("\n"), v.where, v.found):
        assert text.isprintable() and "\x1b" not in text and "\x9b" not in text
        text.encode("utf-8")


@pytest.mark.parametrize("name", ["w\ud800.pt", "w\x1b]52;c;SGVsbG8=\x07.pt"])
def test_tr04_file_names_the_suite_will_not_copy(make: KitFactory, name: str) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch20"]["files"].append(name)
    if "\ud800" not in name:
        kit.write(f"models/epoch20/{name}", b"w")
    kit.result_yaml(yaml.safe_dump(res))
    assert "TR-04" in kit.failed()
    assert any("does not copy" in v.message for v in kit.violations("TR-04"))


def _sparse(path: os.PathLike[str], size: int, data_at: int | None = None) -> None:
    with open(path, "wb") as f:
        if data_at is not None:
            f.seek(data_at)
            f.write(b"w" * 4096)
        f.truncate(size)


@pytest.mark.parametrize(("size", "words"), [
    (1024 ** 4, ["1 TiB", "over the 4 GiB", "allocated on disk"]),
    (3 * 1024 ** 3, ["sparse beyond reason", "3 GiB apparent", "allocated on disk"]),
])
def test_tr15_files_the_platform_cannot_store(make: KitFactory, size: int, words: list[str]) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch20"]["files"].append("huge.bin")
    kit.result_yaml(res)
    _sparse(kit.out_dir / "models/epoch20/huge.bin", size, data_at=4096)
    assert kit.failed() == {"TR-15"}
    [v] = kit.violations("TR-15")
    assert v.level == Level.MUST and v.file == "/out/models/epoch20/huge.bin"
    assert all(w in v.message for w in words), v.message
    assert f"{size} bytes apparent" in v.found and "bytes allocated" in v.found


def test_tr15_counts_apparent_bytes_against_the_package_cap(make: KitFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from ymir_conformance import guard

    monkeypatch.setitem(guard.CAPS, "model-package", 40 * 1024 ** 2)
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch20"]["files"] += ["a.bin", "b.bin"]
    kit.result_yaml(res)
    for name in ("a.bin", "b.bin"):  # 24 MiB each, a quarter of it data: sparse, but within reason
        with open(kit.out_dir / f"models/epoch20/{name}", "wb") as f:
            f.write(os.urandom(6 * 1024 ** 2))
            f.truncate(24 * 1024 ** 2)
    assert kit.failed() == {"TR-15"}
    [v] = kit.violations("TR-15")
    assert v.file.endswith("b.bin") and "of the 40 MiB it copies of one model package" in v.message


def test_tr15_a_normal_training_passes(make: KitFactory) -> None:
    kit = make("training")
    assert kit.finding("TR-15").status == Status.PASSED


def test_tr08_identifier_and_key_equals_name(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["model_stages"]["epoch10"]["stage_name"] = "first"
    kit.result_yaml(res)
    assert kit.failed() == {"TR-08"}
    s = res["model_stages"].pop("epoch10")
    s["stage_name"] = "epoch-10"
    res["model_stages"]["epoch-10"] = s
    kit.write("models/epoch-10/epoch10.pt", b"w")
    kit.result_yaml(res)
    assert kit.failed() == {"TR-08"}


def test_tr09_too_many_stages(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    for i in range(12):
        res["model_stages"][f"e{i}"] = {"stage_name": f"e{i}", "files": ["config.py"], "timestamp": 1, "mAP": 0.1}
    kit.result_yaml(res)
    assert kit.failed() == {"TR-09"}


def test_tr11_best_stage_not_best(make: KitFactory) -> None:
    kit = make("training")
    res = stages(kit)
    res["best_stage_name"] = "epoch10"
    kit.result_yaml(res)
    assert kit.failed() == {"TR-11"}


def test_tr11_uses_the_main_metric_of_the_object_type(make: KitFactory) -> None:
    kit = make("training", ObjectType.SEMANTIC_SEGMENTATION)
    res = stages(kit)
    res["model_stages"]["epoch10"]["mAP"] = 0.99  # not the main metric for semantic segmentation
    kit.result_yaml(res)
    assert kit.failed() == set()
    res["model_stages"]["epoch10"]["mIoU"] = 0.99
    kit.result_yaml(res)
    assert kit.failed() == {"TR-11"}


def test_tr12_object_type_per_release(make: KitFactory) -> None:
    kit = make("training", ObjectType.INSTANCE_SEGMENTATION, release="2.3")
    res = stages(kit)
    del res["object_type"]
    kit.result_yaml(res)
    assert kit.failed("2.3") == {"TR-12"}
    assert kit.finding("TR-12", "2.3").level == Level.MUST
    assert kit.finding("TR-12", "2.5").status == Status.NOT_APPLICABLE
    assert kit.failed("2.5") == set()
    assert kit.finding("TR-12", "2.0").status == Status.NOT_APPLICABLE


def test_tr12_detection_default_is_fine(make: KitFactory) -> None:
    kit = make("training", ObjectType.DETECTION)
    res = stages(kit)
    del res["object_type"]
    kit.result_yaml(res)
    assert kit.failed("2.2") == set()


def test_tr14_tensorboard(make: KitFactory) -> None:
    kit = make("training")
    for p in (kit.out_dir / "tensorboard").iterdir():
        p.unlink()
    assert kit.failed() == {"TR-14"}
    kit.write("tensorboard/events.out.tfevents.123.host", b"\x00garbage" * 50)
    assert kit.failed() == {"TR-14"}
    assert "event" in kit.violations("TR-14")[0].message


def test_legacy_format_is_accepted_everywhere(make: KitFactory) -> None:
    for release in ("1.1", "2.0", "2.3", "2.5"):
        kit = make("training", release=release, conformant=False)
        kit.conformant("1.1")  # legacy model/map
        assert kit.failed(release) == set(), release


def test_legacy_format_problems(make: KitFactory) -> None:
    kit = make("training", release="1.1")
    kit.result_yaml({"model": ["best.pt", "missing.params"], "map": 0.8})
    assert kit.failed("1.1") == {"TR-04"}
    kit.result_yaml({"model": ["/out/models/best.pt", "config.py"], "map": 0.8})
    assert kit.failed("1.1") == set()  # 1.1 applies basename()
    assert kit.failed("2.5") == {"TR-04"}
    kit.result_yaml({"model": "best.pt", "map": 83})
    assert kit.failed("2.5") == {"TR-02"}


def test_tr01_on_1_1_needs_model_and_map(make: KitFactory) -> None:
    """ymir 1.1's _find_models reads result['model'] and result['map']: the SDK's model_stages form (or a
    legacy file without map) raises KeyError and fails the task; only a missing file passes with no model."""
    kit = make("training", release="2.5")  # the SDK's model_stages + best_stage_name form
    finding = kit.finding("TR-01", "1.1")
    assert finding.status is Status.FAILED and finding.level is Level.MUST
    msg = finding.violations[0].message
    assert "KeyError" in msg and "task fails" in msg and "model_stages" in msg
    assert "succeeds" not in msg and "successful" not in msg
    assert "protocol_version" in finding.violations[0].fix
    kit.result_yaml({"model": ["best.pt"], "class_aps": {"cat": 0.8}})
    [v] = kit.violations("TR-01", "1.1")
    assert v.where == "map" and "KeyError" in v.message
    (kit.out_dir / "models/result.yaml").unlink()
    [v] = kit.violations("TR-01", "1.1")
    assert "successful" in v.message and "no model" in v.message
