"""A conformant run passes every check, for every task shape, object type and release it exists on."""
from __future__ import annotations

import pytest

from contract_kit import KitFactory
from ymir_conformance.contracts import Status
from ymir_conformance.model import ObjectType
from ymir_conformance.platform import RELEASES

DET = ObjectType.DETECTION
SEG = [ObjectType.SEMANTIC_SEGMENTATION, ObjectType.INSTANCE_SEGMENTATION, ObjectType.MULTI_MODAL]


def _problems(findings: list) -> list[str]:
    return [v.render() for f in findings if f.status == Status.FAILED for v in f.violations]


@pytest.mark.parametrize("release", [str(r) for r in RELEASES])
@pytest.mark.parametrize("shape", ["training", "mining", "infer", "mining+infer"])
def test_conformant_detection_passes_everything(make: KitFactory, shape: str, release: str) -> None:
    kit = make(shape, DET, release=release)
    findings = kit.judge(release)
    assert _problems(findings) == []
    assert any(f.status == Status.PASSED for f in findings)


@pytest.mark.parametrize("release", ["2.1", "2.3", "2.4", "2.5"])
@pytest.mark.parametrize("object_type", SEG)
@pytest.mark.parametrize("shape", ["training", "infer", "mining+infer"])
def test_conformant_segmentation_passes_everything(make: KitFactory, shape: str, object_type: ObjectType,
                                                   release: str) -> None:
    kit = make(shape, object_type, release=release)
    assert _problems(kit.judge(release)) == []


def test_output_checks_are_not_evaluated_after_a_failure(make: KitFactory) -> None:
    kit = make("training")
    kit.log("Traceback (most recent call last):\nValueError: boom\n")
    findings = {f.check.rule: f for f in kit.judge(exit_code=1)}
    assert findings["TR-01"].status == Status.NOT_EVALUATED
    assert findings["V1"].status == Status.FAILED
