"""Diagnosis by evidence on real containers (issue 16 item 1): the engine's `create` events count the containers
each run really started. A generic crash runs once; a permission error is retried once as root (LC-09); an
empty gpu_id parsed as a number is retried once with gpu_id '0' (LC-07); a network failure is named from the
log (LC-10) and never retried under auto; under all the network retry runs on an internal network that the
session removes at its end, and the failed run stays the judged one.
"""
from __future__ import annotations

import collections
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.engine_events import EngineCreates
from tests.tags import new_tag
from ymir_conformance.contracts.base import Level, Status, judge
from ymir_conformance.options import Settings
from ymir_conformance.runner import LABEL_TAG
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import RunRecord, plan


def certify_training(cl: docker.DockerClient, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     diagnose: str = "auto") -> tuple[RunRecord, collections.Counter[str], Conductor]:
    """The quick profile's training of ``image``, with the containers the engine created for it counted."""
    tag = new_tag("diag-")
    monkeypatch.setenv("YMIR_CONFORMANCE_TAG", tag)
    settings = Settings(images=(image,), profile="quick", tasks=("training",), workdir=tmp_path, diagnose=diagnose)
    conductor = Conductor(cl, settings, tmp_path, uuid.uuid4().hex[:12])
    info = conductor.info(image)
    [spec] = plan([info], settings)
    creates = EngineCreates(cl, tag)
    try:
        record = conductor.get(spec)
    finally:
        counted = creates.stop()
        conductor.close()
    left = cl.containers.list(all=True, filters={"label": f"{LABEL_TAG}={tag}"})
    assert not left, f"containers left behind: {[c.name for c in left]}"
    return record, counted, conductor


def rules(record: RunRecord) -> tuple[set[str], set[str], set[str]]:
    """(MUST failed, SHOULD failed, consequences) of the judged run."""
    assert record.outcome is not None, record.skipped or record.error
    found = judge(record.outcome)
    failed = [f for f in found if f.status is Status.FAILED]
    return ({f.check.rule for f in failed if f.level is Level.MUST},
            {f.check.rule for f in failed if f.level is Level.SHOULD},
            {f.check.rule for f in found if f.status is Status.CONSEQUENCE})


def test_a_generic_crash_runs_once(docker_client: docker.DockerClient, fixture_image: Any, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A late RuntimeError with nothing that names a permission, gpu_id or network cause: no retry, one
    container; V1 is the one MUST and the stale monitor state (MON-07) is listed under it."""
    record, creates, _ = certify_training(docker_client, fixture_image("broken-error-without-state4"), tmp_path,
                                          monkeypatch)
    assert sum(creates.values()) == 1, creates
    assert record.retries == [] and len(record.attempts) == 1
    assert "no evidence" in record.diagnose["not_retried"]
    must, _, consequences = rules(record)
    assert must == {"V1"} and consequences == {"MON-07"}
    [v1] = next(f for f in judge(record.outcome) if f.check.rule == "V1").violations  # type: ignore[arg-type]
    assert any(c.startswith("[MON-07 MUST]") for c in v1.context)


def test_a_permission_error_is_retried_once_as_root(docker_client: docker.DockerClient, fixture_image: Any,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, creates, _ = certify_training(docker_client, fixture_image("environment-root-only"), tmp_path,
                                          monkeypatch)
    assert sum(creates.values()) == 2, creates
    [retry] = record.retries
    assert retry["kind"] == "root" and retry["succeeded"] and "PermissionError" in retry["reason"]
    assert "/root/.cache" in retry["reason"]
    assert record.outcome is not None and record.outcome.retried_as_root and record.outcome.user == "0:0"
    assert any(n.startswith("retried as root: log shows PermissionError on /root/.cache") for n in
               record.outcome.diagnosis), record.outcome.diagnosis
    must, should, _ = rules(record)
    assert must == set() and "LC-09" in should


@pytest.mark.parametrize("name", ["environment-gpu-id-int", "environment-cpu-crash"])
def test_a_gpu_id_parsing_error_is_retried_once_with_gpu_id_0(docker_client: docker.DockerClient,
                                                              fixture_image: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    record, creates, _ = certify_training(docker_client, fixture_image(name), tmp_path, monkeypatch)
    assert sum(creates.values()) == 2, creates
    [retry] = record.retries
    assert retry["kind"] == "gpu-id" and retry["rule"] == "LC-07" and retry["succeeded"]
    assert record.attempts[-1]["gpu_id"] == "0"
    assert record.outcome is not None and record.outcome.needs_gpu_id and record.outcome.exit_code != 0
    must, should, _ = rules(record)
    assert must == {"V1"} and "LC-07" in should


def test_a_network_failure_is_named_from_the_log_and_not_retried(docker_client: docker.DockerClient,
                                                                 fixture_image: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    record, creates, _ = certify_training(docker_client, fixture_image("environment-needs-network"), tmp_path,
                                          monkeypatch)
    assert sum(creates.values()) == 1, creates
    assert record.retries == [] and "never retried" in record.diagnose["not_retried"]
    must, should, _ = rules(record)
    assert must == {"V1"} and "LC-10" in should
    assert record.outcome is not None and not record.outcome.network
    [lc10] = next(f for f in judge(record.outcome) if f.check.rule == "LC-10").violations
    assert "http://10.255.255.1/weights/backbone.bin" in lc10.message and "unreachable network" in lc10.message


def test_all_retries_on_an_internal_network_and_judges_the_failed_run(docker_client: docker.DockerClient,
                                                                      fixture_image: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """--ymir-diagnose=all: as root (fails again), then on the session's internal network (works): LC-10, and the
    judged run is the failed --network none one (V1). The network is gone after the session's cleanup."""
    record, creates, conductor = certify_training(docker_client, fixture_image("environment-needs-network"),
                                                  tmp_path, monkeypatch, diagnose="all")
    try:
        assert sum(creates.values()) == 3, creates
        assert [(r["kind"], r["succeeded"]) for r in record.retries] == [("root", False), ("network", True)]
        network = record.retries[1]["network"]
        assert network.startswith("ymir-diag-")
        net = docker_client.networks.get(network)
        assert net.attrs["Internal"] is True
        assert net.attrs["Options"].get("com.docker.network.bridge.inhibit_ipv4") == "true"
        assert record.outcome is not None and record.outcome.needs_network and not record.outcome.network
        assert record.outcome.exit_code != 0  # the judged run is the first one
        must, should, _ = rules(record)
        assert must == {"V1"} and "LC-10" in should
    finally:
        conductor.cleanup()
    with pytest.raises(docker.errors.NotFound):
        docker_client.networks.get(network)
