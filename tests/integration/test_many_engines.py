"""--ymir-engines: runs spread over two engines on this host (the main one and a second dockerd), each run's
engine in report.json. Without xdist the conductor gives each training group (a training and every run that
uses its model) to the next engine in turn; with xdist each worker binds to one engine."""
from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from engines_kit import MAIN_URL, SecondEngine, run_suite, second_engine
from tests.tags import new_tag

ENGINE = "ymirt-many"


@pytest.fixture(scope="module")
def other_engine(docker_client: docker.DockerClient, fixture_image: Any) -> Iterator[SecondEngine]:
    with second_engine(docker_client, ENGINE, (fixture_image("reference-det"),)) as engine:
        yield engine


def _engines_by_group(report: Path) -> dict[str, set[str]]:
    """input release (one training group per family here) -> the engines its runs used."""
    runs = json.loads(report.read_text())["runs"]
    groups: dict[str, set[str]] = collections.defaultdict(set)
    for r in runs:
        if "exit_code" in r:
            groups[r["inputs_release"]].add(r["engine"])
    return groups


@pytest.mark.parametrize("xdist", [False, True], ids=["conductor-round-robin", "xdist-worker-per-engine"])
def test_runs_spread_over_two_engines(other_engine: SecondEngine, fixture_image: Any, tmp_path: Path,
                                      xdist: bool) -> None:
    tag = new_tag()
    engines = f"{MAIN_URL},{other_engine.url}"
    result = run_suite(other_engine.env(YMIR_CONFORMANCE_TAG=tag), tmp_path,
                       f"--image={fixture_image('reference-det')}", f"--ymir-engines={engines}",
                       "--ymir-platform=1.1,2.5", f"--ymir-workdir={tmp_path / 'work'}",
                       f"--ymir-report-dir={tmp_path / 'reports'}", *(["-n", "2"] if xdist else []))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    groups = _engines_by_group(tmp_path / "reports" / "report.json")
    print(f"engines per training group ({'xdist' if xdist else 'round-robin'}): {dict(groups)}")
    assert len(groups) == 2 and all(len(e) == 1 for e in groups.values()), groups  # a group stays on one engine
    assert set().union(*groups.values()) == {MAIN_URL, other_engine.url}, groups  # both engines ran
    for cl in (other_engine.client, docker.DockerClient(base_url=MAIN_URL)):
        assert cl.containers.list(all=True, filters={"label": f"org.ymir-conformance.tag={tag}"}) == []
