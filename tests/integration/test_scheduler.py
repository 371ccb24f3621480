"""The scheduler from the outside (issue 13): `--ymir-jobs=N` runs the container runs whose inputs are ready
together, each still its own `docker run` and each exactly once; `--ymir-jobs=1` runs them one at a time.

A plain `python -m pytest --image=... --ymir-jobs=N` subprocess from an empty directory, witnessed by the Docker
engine's own event stream, subscribed to before the subprocess starts (the engine keeps only its last 256 events,
so a later `since`/`until` query can miss some on a busy engine).
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from tests.tags import new_tag

LABEL_TAG = "org.ymir-conformance.tag"
LABEL_RUN = "org.ymir-conformance.run"
QUICK_RUNS = ("det-voc", "infer-det-voc", "mining-det-voc", "mining+infer-det-voc")  # reference-det, quick
DOWNSTREAM = ("infer-", "mining-", "mining+infer-")


@dataclass
class Lifetimes:
    """Task containers (label run != inspect) of one tag: run id -> creates, and each container's start/die."""

    creates: collections.Counter[str] = field(default_factory=collections.Counter)
    start: dict[str, int] = field(default_factory=dict)  # container id -> timeNano
    die: dict[str, int] = field(default_factory=dict)
    run_of: dict[str, str] = field(default_factory=dict)  # container id -> run id

    def intervals(self) -> list[tuple[str, int, int]]:
        return sorted((self.run_of[c], t, self.die[c]) for c, t in self.start.items() if c in self.die)

    def overlaps(self, only: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Pairs of runs where one started before the other died (their lifetimes intersect)."""
        spans = [(r, a, b) for r, a, b in self.intervals() if not only or r.startswith(only)]
        return [(r1, r2) for i, (r1, a1, b1) in enumerate(spans) for r2, a2, b2 in spans[i + 1:]
                if a2 < b1 and a1 < b2]


class EngineWatch:
    def __init__(self, cl: docker.DockerClient, tag: str) -> None:
        self.seen = Lifetimes()
        self._stream = cl.events(decode=True, filters={"type": "container", "label": f"{LABEL_TAG}={tag}"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for ev in self._stream:
                attrs: dict[str, str] = ev.get("Actor", {}).get("Attributes", {})
                run = attrs.get(LABEL_RUN, "inspect")
                if run == "inspect":
                    continue
                cid, status, t = str(ev.get("id", "")), ev.get("status") or ev.get("Action"), int(ev["timeNano"])
                self.seen.run_of[cid] = run
                if status == "create":
                    self.seen.creates[run] += 1
                elif status == "start":
                    self.seen.start[cid] = t
                elif status == "die":
                    self.seen.die[cid] = t
        except Exception:  # closed
            pass

    def stop(self) -> Lifetimes:
        self._stream.close()
        self._reader.join(timeout=10)
        return self.seen


def certify(cl: docker.DockerClient, image: str, tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                   Lifetimes, dict[str, Any]]:
    tag = new_tag()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"))}
    env["YMIR_CONFORMANCE_TAG"] = tag
    watch = EngineWatch(cl, tag)  # subscribed BEFORE the session starts
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", f"--image={image}", "-p", "no:cacheprovider",
                               f"--ymir-workdir={tmp / 'work'}", f"--ymir-report-dir={tmp / 'report'}", *args],
                              cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    finally:
        seen = watch.stop()
    report = json.loads((tmp / "report" / "report.json").read_text()) if proc.returncode == 0 else {}
    return proc, seen, report


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "session"
    d.mkdir()
    return d


def test_downstream_runs_overlap_each_once(docker_client: docker.DockerClient, fixture_image: Any,
                                           empty_dir: Path) -> None:
    proc, seen, report = certify(docker_client, fixture_image("reference-det"), empty_dir, "--ymir-jobs=3")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert dict(seen.creates) == {r: 1 for r in QUICK_RUNS}, f"each run exactly once: {dict(seen.creates)}"
    overlapping = seen.overlaps(DOWNSTREAM)
    assert overlapping, f"downstream runs did not overlap with --ymir-jobs=3: {seen.intervals()}"
    # the training ran before every downstream run started (they need its model)
    spans = {r: (a, b) for r, a, b in seen.intervals()}
    assert all(spans[r][0] >= spans["det-voc"][1] for r in QUICK_RUNS[1:]), spans
    runs = {r["id"]: r for r in report["runs"]}
    assert report["settings"]["jobs"] == 3
    for r in QUICK_RUNS:  # queue and wall time per run, in report.json and the terminal run table
        assert runs[r]["queue_s"] >= 0 and runs[r]["wall_s"] > 0, runs[r]
    assert "queued " in out and ", wall " in out
    print(f"\noverlapping downstream runs: {overlapping}")


def test_one_job_runs_one_at_a_time(docker_client: docker.DockerClient, fixture_image: Any,
                                    empty_dir: Path) -> None:
    proc, seen, _ = certify(docker_client, fixture_image("reference-det"), empty_dir, "--ymir-jobs=1")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert dict(seen.creates) == {r: 1 for r in QUICK_RUNS}, f"each run exactly once: {dict(seen.creates)}"
    assert not seen.overlaps(), f"--ymir-jobs=1 overlapped runs: {seen.intervals()}"
