"""Export formats on real containers: the declared format first, the others at SHOULD, downstream runs on the
declared format's model (or, when its training fails, another format's, said so), and a model cache that only
training inputs key.

Each session is a plain ``pytest --image=...`` in a directory of its own; container creations are counted from the
engine's event stream, filtered by a label unique to the test (``org.ymir-conformance.tag``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker

from tests.engine_events import EngineCreates
from tests.integration.test_plugin_e2e import assert_valid_report
from tests.tags import new_tag

DOWNSTREAM = ("retraining", "infer", "infer-nonbest", "single-image-infer", "mining", "mining+infer")


@contextmanager
def creates(tag: str) -> Iterator[list[str]]:
    """The run ids of the task containers the engine creates with ``tag`` (filled when the block ends)."""
    cl = docker.from_env()
    seen: list[str] = []
    witness = EngineCreates(cl, tag)
    try:
        yield seen
    finally:
        witness.stop()
        seen.extend(witness.runs())
        cl.close()


def session(tmp: Path, image: str, *args: str, tag: str, work: Path | None = None) -> subprocess.CompletedProcess[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pytest", f"--image={image}", "-p", "no:cacheprovider", "-q",
                           f"--ymir-workdir={work or tmp / 'work'}", *args], cwd=tmp,
                          env={**os.environ, "YMIR_CONFORMANCE_TAG": tag}, capture_output=True, text=True,
                          timeout=900)


def runs_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in data["runs"]}


def test_an_ark_only_image_passes_standard_with_shoulds_and_judged_downstream_runs(
        tmp_path: Path, fixture_image: Any) -> None:
    """realistic-det reads ARK only (its template: export_format ark:raw). Standard trains every format 2.5
    offers: det-ark first, the others fail once each (no diagnosis retries) and are SHOULD findings worded for
    the user who switches the format in the form; every downstream run uses the det-ark model and is judged."""
    image = fixture_image("realistic-det")
    tag = new_tag("formats-")
    reports = tmp_path / "reports"
    with creates(tag) as made:
        proc = session(tmp_path, image, "--ymir-profile=standard", f"--ymir-report-dir={reports}", tag=tag)
    assert proc.returncode == 0, proc.stdout[-6000:]
    data = assert_valid_report(reports / "report.json")
    [note] = data["images"][0]["notes"]
    assert "declares export_format 'ark:raw' (det-ark); the standard profile also trains on det-voc, coco" in note
    assert [(v["release"], v["verdict"], v["gated"], v["platform_accepts"]) for v in data["verdicts"]] == [
        ("2.5", "conformant with warnings", True, True)]
    assert {(f["rule"], f["level"], f["run"]) for f in data["findings"]} == {
        ("V1", "SHOULD", "det-voc"), ("V1", "SHOULD", "coco")}
    for f in data["findings"]:
        assert f["message"].startswith(f"if a user switches export_format to {f['run']}:raw in the form, "
                                       "training fails: the container exited 1")
    runs = runs_by_id(data)
    for fmt in ("det-voc", "coco"):
        assert len(runs[fmt]["attempts"]) == 1 and runs[fmt]["exit_code"] == 1
        assert runs[fmt]["off_declared_format"] == {"export_format": f"{fmt}:raw", "releases": ["2.5"]}
    assert runs["det-ark"]["exit_code"] == 0 and "off_declared_format" not in runs["det-ark"]
    for kind in DOWNSTREAM:
        run = runs[f"{kind}-det-ark"]
        assert run["exit_code"] == 0 and run["model_from"] == "det-ark" and "model_note" not in run, kind
    judged = {(j["subject"], j["area"]) for j in data["judgements"]
              if any(f["status"] == "passed" for f in j["findings"])}
    for subject, area in (("infer-det-ark", "infer"), ("mining-det-ark", "mining"),
                          ("retraining-det-ark", "training"), ("mining+infer-det-ark", "infer")):
        assert (subject, area) in judged, (subject, area)
    # the realistic executor's audits: it opened its ARK annotations, its images and its checkpoint files
    assert runs["det-ark"]["inputs_opened"]["annotations"]["opened"] > 0
    assert runs["infer-det-ark"]["inputs_opened"]["models"]["opened"] > 0
    assert sorted(made) == sorted(r["id"] for r in data["runs"] if "attempts" in r)  # one container per run


def test_downstream_runs_use_another_format_when_the_declared_one_fails(tmp_path: Path, fixture_image: Any) -> None:
    """broken-realistic-ark-crash declares ark:raw but reads VOC only: the det-ark training fails (a MUST: it is
    the declared format), det-voc trains (SHOULD-level run, passes), and the downstream runs use the det-voc model
    and say so in the report, the terminal and their tests."""
    image = fixture_image("broken-realistic-ark-crash")
    tag = new_tag("formats-")
    reports = tmp_path / "reports"
    proc = session(tmp_path, image, "--ymir-profile=standard", "--ymir-tasks=training,infer,mining",
                   f"--ymir-report-dir={reports}",
                   tag=tag)
    assert proc.returncode == 1, proc.stdout[-6000:]
    data = assert_valid_report(reports / "report.json")
    must = {(f["rule"], f["run"]) for f in data["findings"] if f["level"] == "MUST"}
    assert must == {("V1", "det-ark")}, must
    runs = runs_by_id(data)
    assert runs["det-voc"]["exit_code"] == 0
    note = ("the det-ark training (the export format the training template declares) gave no model (it failed); "
            "this run uses the model of training det-voc instead")
    for rid in ("infer-det-ark", "mining-det-ark"):
        assert runs[rid]["exit_code"] == 0 and runs[rid]["model_from"] == "det-voc", runs[rid]
        assert runs[rid]["model_note"] == note
    assert f"note: {note}" in proc.stdout
    assert not [f for f in data["findings"] if f["run"] in ("infer-det-ark", "mining-det-ark")]


def test_an_infer_only_edit_reuses_the_cached_model(tmp_path: Path, fixture_image: Any) -> None:
    """A training session fills the model cache; a later infer session with an infer-only --ymir-set edit
    creates no training container. A training edit is another model: that session trains (the control)."""
    image = fixture_image("reference-det")
    work = tmp_path / "work"
    tag = new_tag("formats-")
    with creates(tag) as first:
        proc = session(tmp_path / "a", image, "--ymir-tasks=training", tag=tag, work=work)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert first == ["det-voc"]
    tag = new_tag("formats-")
    with creates(tag) as second:
        proc = session(tmp_path / "b", image, "--ymir-tasks=infer", "--ymir-set", "infer.conf_threshold=0.5",
                       "--ymir-report-dir=reports", tag=tag, work=work)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert second == ["infer-det-voc"], second  # no training container
    data = assert_valid_report(tmp_path / "b" / "reports" / "report.json")
    assert "reused the model cached at" in runs_by_id(data)["det-voc"]["skipped"]
    tag = new_tag("formats-")
    with creates(tag) as third:
        proc = session(tmp_path / "c", image, "--ymir-tasks=infer", "--ymir-set", "training.epochs=1", tag=tag,
                       work=work)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert sorted(third) == ["det-voc", "infer-det-voc"], third
