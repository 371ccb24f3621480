"""The Conductor's scheduler without Docker: runs as futures, each once, downstream runs after their training,
at most --ymir-jobs at once; and --ymir-jobs parsing."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ymir_conformance.errors import SettingsError
from ymir_conformance.model import ObjectType
from ymir_conformance.options import Settings, parse_jobs
from ymir_conformance.platform import Release
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import RunRecord, RunSpec


def spec(kind: str, fmt: str = "det-voc") -> RunSpec:
    return RunSpec("img:1", ObjectType.DETECTION, kind, fmt, Release(2, 5), (Release(2, 5),))


class Fake(Conductor):
    """_execute sleeps instead of running a container, and records what ran when."""

    def __init__(self, jobs: int, tmp: Path) -> None:
        super().__init__(object(), Settings(jobs=jobs), tmp / "work", "s")  # type: ignore[arg-type]
        self.ran: list[RunSpec] = []
        self.live = 0
        self.peak = 0
        self.spans: dict[RunSpec, tuple[float, float]] = {}
        self.guard = threading.Lock()

    def _execute(self, s: RunSpec) -> RunRecord:
        if s.kind != "training":  # downstream runs read their training's record, as the real ones do
            assert s.training_spec() in self.records, f"{s.id} ran before its training"
        with self.guard:
            self.ran.append(s)
            self.live += 1
            self.peak = max(self.peak, self.live)
        t0 = time.monotonic()
        time.sleep(0.15)
        with self.guard:
            self.live -= 1
        self.spans[s] = (t0, time.monotonic())
        rec = RunRecord(s, None, None, skipped="fake")
        rec.started_at, rec.finished_at = t0, time.monotonic()
        return rec


PLAN = [spec("training"), spec("infer"), spec("mining"), spec("mining+infer"),
        spec("training", "det-ark"), spec("infer", "det-ark")]


def test_eager_plan_runs_each_once_downstream_after_training(tmp_path: Path) -> None:
    c = Fake(3, tmp_path)
    c.set_plan(PLAN)
    first = c.get(spec("infer"))  # the test of one run: every planned run is scheduled
    assert first.spec == spec("infer")
    for s in PLAN:
        c.get(s)
    assert sorted(s.id for s in c.ran) == sorted(s.id for s in PLAN)  # each exactly once
    assert c.peak <= 3
    assert c.peak >= 2  # the two trainings (and downstream runs) overlapped
    voc = c.spans[spec("training")]
    assert all(c.spans[s][0] >= voc[1] for s in PLAN[1:4])
    rec = c.records[spec("mining")]
    assert rec.queue_s is not None and rec.wall_s is not None and rec.queue_s >= 0
    c.close()


def test_one_job_never_overlaps(tmp_path: Path) -> None:
    c = Fake(1, tmp_path)
    c.set_plan(PLAN)
    for s in PLAN:
        c.get(s)
    assert c.peak == 1 and len(c.ran) == len(PLAN)


def test_lazy_plan_schedules_only_the_asked_group(tmp_path: Path) -> None:
    c = Fake(2, tmp_path)
    c.set_plan(PLAN, eager=False)  # an xdist worker
    c.get(spec("infer", "det-ark"))
    time.sleep(0.3)
    assert {s.export_format for s in c.ran} == {"det-ark"}
    c.close()


def test_close_cancels_queued_runs(tmp_path: Path) -> None:
    c = Fake(1, tmp_path)
    c.set_plan(PLAN)
    c.get(spec("training"))
    c.close()
    rec = c.get(spec("infer", "det-ark"))
    assert rec.outcome is None
    time.sleep(0.5)
    assert len(c.ran) < len(PLAN)


def test_parse_jobs(monkeypatch: Any) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert parse_jobs(None, "--ymir-jobs") == 8
    assert parse_jobs(None, "--ymir-jobs", workers=4) == 2
    assert parse_jobs(None, "--ymir-jobs", gpu_ids=("0", "1")) == 1
    assert parse_jobs("3", "--ymir-jobs") == 3
    for bad in ("0", "x"):
        with pytest.raises(SettingsError):
            parse_jobs(bad, "--ymir-jobs")
    with pytest.raises(SettingsError, match="two runs on one GPU"):
        parse_jobs("2", "--ymir-jobs", gpu_ids=("0",))
