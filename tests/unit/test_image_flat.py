"""IM-04: templates are flat, except for keys the platform overwrites or deletes (contract §2, §3.3)."""
from __future__ import annotations

from ymir_conformance.image import PLATFORM_KEYS, ImageInfo, _check_flat
from ymir_conformance.model import ObjectType


def _info() -> ImageInfo:
    return ImageInfo("img:1", "sha256:" + "a" * 64, ["bash"], [], None, [ObjectType.DETECTION], {})


def test_platform_keys_may_be_nested() -> None:
    info = _info()
    _check_flat("/img-man/training-template.yaml", {
        "pretrained_model_params": ["/in/models/a.pt"], "class_names": ["cat", "dog"],
        "model_params_path": ["/in/models/a.pt"], "task_id": {"x": 1}, "gpu_id": ["0"], "epochs": 3}, info)
    assert info.violations == []
    for key in ("task_id", "class_names", "gpu_id", "pretrained_model_params", "model_params_path", "run_infer",
                "run_mining"):
        assert key in PLATFORM_KEYS


def test_user_keys_must_be_flat() -> None:
    info = _info()
    _check_flat("/img-man/training-template.yaml", {"class_names": ["cat"], "anchors": [1, 2, 3],
                                                     "object_type": [2]}, info)
    [v] = info.violations
    assert v.rule == "IM-04" and v.where == "anchors" and "object_type" in v.message
    assert "class_names" not in v.message
