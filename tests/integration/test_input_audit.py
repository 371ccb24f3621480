"""The input audit on real containers: every reference image reads all it is given and nothing else.

The broken images that read too little or too much (``broken-ignores-annotations`` -> IN-11,
``broken-ignores-model`` -> IN-13, ``broken-lists-assets`` -> LC-04) are declared in
fixtures/executors/broken/gallery.yaml and judged by test_gallery.py, exactly by those rules.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.audit import counts_line
from ymir_conformance.contracts.base import Status, judge
from ymir_conformance.options import Settings
from ymir_conformance.platform import LATEST
from ymir_conformance.report.terminal import render_summary
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import outcome_json, plan

REFERENCES = ["reference-det", "reference-semseg", "reference-instseg", "reference-multi"]
RULES = {"IN-11", "IN-12", "IN-13", "LC-04"}


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_images_open_all_their_inputs_and_no_decoy(docker_client: docker.DockerClient,
                                                             fixture_image: Any, tmp_path: Path, name: str) -> None:
    tag = fixture_image(name)
    settings = Settings(images=(tag,), profile="quick", tasks=("training", "infer", "mining", "mining+infer"),
                        workdir=tmp_path, releases=(LATEST,))
    conductor = Conductor(docker_client, settings, tmp_path, uuid.uuid4().hex[:12])
    runs: list[dict[str, Any]] = []
    try:
        for spec in plan([conductor.info(tag)], settings):
            record = conductor.get(spec)
            o = record.outcome
            assert o is not None, f"{spec.id}: {record.skipped or record.error}"
            assert o.succeeded, f"{spec.id} exited {o.exit_code}"
            audit = o.inputs_opened
            assert audit["audited"] and audit["complete"], f"{spec.id}: {audit}"
            assert not audit["assets_listed"] and audit["decoys"]["opened"] == 0, f"{spec.id}: {audit}"
            assert audit["decoys"]["present"] == 4  # the workspace's other-task images
            if o.shape.run_training:
                ann, imgs = audit["annotations"], audit["assets"]
                assert ann["listed"] > 0 and ann["opened"] == ann["listed"], f"{spec.id}: {ann}"
                assert imgs["listed"] > 0 and imgs["opened"] == imgs["listed"], f"{spec.id}: {imgs}"
            else:
                cand, models = audit["candidates"], audit["models"]
                assert cand["listed"] > 0 and cand["opened"] == cand["listed"], f"{spec.id}: {cand}"
                assert models["opened"] >= 1 and models["key"] == "model_params_path", f"{spec.id}: {models}"
            findings = {f.check.rule: f for f in judge(o, LATEST) if f.check.rule in RULES}
            assert not [r for r, f in findings.items() if f.status is Status.FAILED], findings
            assert any(f.status is Status.PASSED for f in findings.values())
            runs.append(outcome_json(record))
    finally:
        conductor.cleanup()
    text = "\n".join(render_summary({"settings": {}, "runs": runs, "images": [
        {"image": tag, "image_id": "", "compatibility": [], "summary": ""}]}))
    for run in runs:
        assert run["inputs_opened"]["audited"]
        assert f"inputs opened: {counts_line(run['inputs_opened'])}" in text
    assert "annotations " in text and "candidates " in text and "model files " in text
