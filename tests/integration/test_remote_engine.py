"""An engine that cannot see the suite's files (a stand-in for a remote host): a second dockerd in its own mount
namespace with an empty tmpfs over the directory holding the workspaces (scripts/second-engine
--hidden-workdir). A bind mount from there shows the image an empty /in. The suite must notice (a probe file
through a bind mount), ship /in into volumes and fetch /out back over the API (archive transfer), and pass the
reference executor; forced to bind, it must stop before any run with a message naming --ymir-transfer=archive.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from engines_kit import SecondEngine, run_suite, second_engine
from tests.tags import new_tag

ENGINE = "ymirt-hidden"


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hidden-from-the-engine")


@pytest.fixture(scope="module")
def hidden_engine(docker_client: docker.DockerClient, fixture_image: Any, hidden: Path) -> Iterator[SecondEngine]:
    with second_engine(docker_client, ENGINE, (fixture_image("reference-det"),), "--hidden-workdir",
                       str(hidden)) as engine:
        yield engine


def test_the_hidden_engine_really_cannot_see_the_workdir(hidden_engine: SecondEngine, hidden: Path) -> None:
    (hidden / "probe").write_text("visible")
    out = hidden_engine.client.containers.run("ymir-conformance/reference-det:latest", ["ls", "-A", "/x"],
                                              entrypoint=[], volumes={str(hidden): {"bind": "/x", "mode": "ro"}},
                                              network_mode="none", remove=True)
    assert out.decode().strip() == "", out


def test_archive_transfer_passes_the_reference_on_an_engine_that_cannot_see_the_workdir(
        hidden_engine: SecondEngine, fixture_image: Any, hidden: Path, tmp_path: Path) -> None:
    tag = new_tag()
    work, reports = hidden / f"work-{tag}", tmp_path / "reports"
    t0 = time.monotonic()
    result = run_suite(hidden_engine.env(YMIR_CONFORMANCE_TAG=tag), tmp_path,
                       f"--image={fixture_image('reference-det')}", f"--ymir-workdir={work}",
                       f"--ymir-report-dir={reports}")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    assert "platform 2.5  PASS" in out, out[-3000:]
    assert "(archive: a file the suite wrote under" in out, out[:3000]  # auto chose archive, and says why
    runs = json.loads((reports / "report.json").read_text())["runs"]
    ran = [r for r in runs if "exit_code" in r]
    assert ran and all(r["transfer"] == "archive" and r["engine"] == hidden_engine.url for r in ran), ran
    assert all(r["inputs_opened"]["audited"] is False for r in ran)  # the host cannot watch a copy
    training = next(r for r in ran if r["kind"] == "training")
    archive = training["attempts"][-1]["archive"]
    assert archive["fetched"]["files"] >= 3 and archive["refused"] == [], archive
    assert len(training["progress"]) >= 1, training["progress"]  # monitor.txt sampled over the API
    print(f"archive transfer on a hidden engine: {time.monotonic() - t0:.1f} s; training shipped "
          f"{archive['shipped_bytes']} bytes in {archive['ship_s']} s, fetched {archive['fetched']} in "
          f"{archive['fetch_s']} s")
    assert hidden_engine.client.volumes.list(filters={"label": f"org.ymir-conformance.tag={tag}"}) == []
    assert hidden_engine.client.containers.list(all=True, filters={"label": f"org.ymir-conformance.tag={tag}"}) == []


def test_forced_bind_on_an_engine_that_cannot_see_the_workdir_fails_clearly(
        hidden_engine: SecondEngine, fixture_image: Any, hidden: Path, tmp_path: Path) -> None:
    result = run_suite(hidden_engine.env(), tmp_path, f"--image={fixture_image('reference-det')}",
                       f"--ymir-workdir={hidden / 'work-bind'}", "--ymir-transfer=bind", timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 4, out[-4000:]  # a usage error, before any task container
    assert "cannot see the suite's files" in out and "--ymir-transfer=archive" in out, out[-4000:]
