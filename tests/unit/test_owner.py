"""Whose leftovers may be reaped (ymir_conformance.owner.gone, runner.reap_stale): no Docker, no real pids."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ymir_conformance import runner
from ymir_conformance.owner import (MAX_AGE_S, OWNER_FILE, Owner, Probe, engine_time, gone, pid_alive,
                                    process_start_time)

NOW = 1_700_000_000.0
BOOT = "d8c5e62e-9c76-4bc9-97f0-2127e0a09ff3"


def probe(alive: bool = True, started: float | None = NOW - 3600, cmdline: str | None = "python -m pytest",
          boot: str = BOOT, pid_ns: str = "pid:[1]", host: str = "ci-1") -> Probe:
    return Probe(boot_id=boot, pid_ns=pid_ns, host=host, now=NOW, alive=lambda pid: alive,
                 started=lambda pid: started, cmdline=lambda pid: cmdline)


def owner(**kw: Any) -> Owner:
    base: dict[str, Any] = {"session": "0123456789ab", "pid": 4242, "boot_id": BOOT, "created": NOW - 600,
                            "pid_ns": "pid:[1]", "host": "ci-1"}
    base.update(kw)
    return Owner(**base)


def test_a_live_owner_keeps_its_leftovers() -> None:
    assert gone(owner(), NOW - 600, probe()) is None


def test_a_dead_pid_is_gone() -> None:
    assert gone(owner(), NOW - 600, probe(alive=False)) == "not running"


def test_another_boot_is_gone_even_if_the_pid_runs_again() -> None:
    assert gone(owner(), NOW - 600, probe(boot="00000000-0000-0000-0000-000000000000")) == \
        "the host rebooted since"


def test_pid_reused_by_a_process_started_after_the_owner_recorded_itself() -> None:
    assert gone(owner(), NOW - 600, probe(started=NOW - 60)) == "pid reused by a newer process"
    # the owner itself started before it recorded its creation time (within the clock slack): alive
    assert gone(owner(), NOW - 600, probe(started=NOW - 601)) is None
    assert gone(owner(), NOW - 600, probe(started=NOW - 599)) is None


def test_pid_reuse_by_command_line_when_the_start_time_is_unknown() -> None:
    assert gone(owner(), NOW - 600, probe(started=None, cmdline="/usr/sbin/nginx -g daemon")) == \
        "pid reused by '/usr/sbin/nginx'"
    assert gone(owner(), NOW - 600, probe(started=None, cmdline="/usr/bin/python3 -m pytest")) is None
    assert gone(owner(), NOW - 600, probe(started=None, cmdline=None)) is None


def test_what_cannot_be_judged_is_reaped_only_when_old() -> None:
    young, old = NOW - 600, NOW - MAX_AGE_S - 1
    for o in (None, owner(host="other-host"), owner(pid_ns="pid:[2]")):
        dead = probe(alive=False)
        assert gone(o, young, dead) is None, o
        assert gone(o, None, dead) is None, o
        assert gone(o, old, dead) is not None, o


def test_kept_sessions_are_never_reaped() -> None:
    assert gone(owner(keep=True), NOW - MAX_AGE_S * 10, probe(alive=False, boot="other")) is None


def test_labels_and_owner_file_round_trip(tmp_path: Path) -> None:
    o = owner(keep=True, created=NOW + 0.25)
    labels = o.labels("org.ymir-conformance")
    labels["org.ymir-conformance.session"] = o.session
    assert Owner.from_labels(labels, "org.ymir-conformance", "org.ymir-conformance.session") == o
    assert Owner.from_labels({"org.ymir-conformance.session": "x"}, "org.ymir-conformance",
                             "org.ymir-conformance.session") is None
    o.write(tmp_path / "s")
    assert Owner.read(tmp_path / "s") == o
    (tmp_path / "s" / OWNER_FILE).write_text("{not json")
    assert Owner.read(tmp_path / "s") is None


def test_run_labels_carry_the_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YMIR_CONFORMANCE_TAG", "t1")
    me = runner.claim_session("feedfacecafe")
    labels = runner.run_labels("feedfacecafe", "det-voc")
    got = Owner.from_labels(labels, runner.LABEL_PREFIX, runner.LABEL_SESSION)
    assert got is not None and got.pid == os.getpid() and got.boot_id == me.boot_id and got.session == "feedfacecafe"
    assert labels[runner.LABEL_TAG] == "t1" and labels[runner.LABEL_RUN] == "det-voc"
    assert abs(float(labels[runner.LABEL_CREATED]) - time.time()) < 60
    assert runner.inspect_labels()[runner.LABEL_SESSION] == "feedfacecafe"
    assert gone(got, time.time(), Probe()) is None  # this very process is alive


def test_real_probe_on_real_processes() -> None:
    assert pid_alive(os.getpid())
    started = process_start_time(os.getpid())
    assert started is not None and started <= time.time()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # collected: the pid is free
    assert not pid_alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline and pid_alive(zombie.pid):  # exited, not yet collected: a zombie
        time.sleep(0.05)
    assert not pid_alive(zombie.pid)
    zombie.wait()


def test_engine_time() -> None:
    assert engine_time("2023-11-14T22:13:20.123456789Z") == pytest.approx(NOW + 0.123456, abs=1e-5)
    assert engine_time("2023-11-14T22:13:20Z") == NOW
    assert engine_time("garbage") is None


class FakeContainer:
    def __init__(self, labels: dict[str, str], created: str, removed: list[str], name: str) -> None:
        self.labels = labels
        self.attrs = {"Created": created}
        self.name = name
        self._removed = removed

    def remove(self, force: bool = False) -> None:
        self._removed.append(self.name)


class FakeClient:
    def __init__(self, containers: list[FakeContainer]) -> None:
        self.containers = self
        self._all = containers

    def list(self, **kw: Any) -> list[FakeContainer]:
        return self._all


def test_reap_stale_removes_only_what_gone_owners_left(tmp_path: Path) -> None:
    removed: list[str] = []
    recent = "2023-11-14T22:03:20Z"  # 10 min before NOW
    alive_pid, dead_pid = 1111, 2222

    def mk(name: str, o: Owner | None, created: str = recent) -> FakeContainer:
        labels = {runner.LABEL_SESSION: o.session if o else "legacy"}
        if o is not None:
            labels.update(o.labels(runner.LABEL_PREFIX))
        return FakeContainer(labels, created, removed, name)

    live, dead = owner(pid=alive_pid, session="aaaaaaaaaaaa"), owner(pid=dead_pid, session="bbbbbbbbbbbb")
    cl = FakeClient([mk("live", live), mk("dead", dead), mk("legacy-new", None),
                     mk("legacy-old", None, "2023-11-01T00:00:00Z"), mk("mine", owner(pid=dead_pid, session="cccccccccccc"))])
    root = tmp_path / "work"
    for o in (live, dead):
        o.write(root / o.session)
    (root / "model-cache").mkdir()
    (root / "dddddddddddd").mkdir()  # no owner file, young: may be a session that is just starting
    (root / "not-a-session").mkdir()
    alive: Callable[[int], bool] = lambda pid: pid == alive_pid  # noqa: E731
    p = Probe(boot_id=BOOT, pid_ns="pid:[1]", host="ci-1", now=NOW, alive=alive, started=lambda pid: NOW - 3600,
              cmdline=lambda pid: "python")
    done = runner.reap_stale(cl, root, spare=("cccccccccccc",), probe=p)  # type: ignore[arg-type]
    assert sorted(removed) == ["dead", "legacy-old"]
    assert sorted(d.name for d in root.iterdir()) == ["aaaaaaaaaaaa", "dddddddddddd", "model-cache", "not-a-session"]
    assert (done.containers, done.workspaces) == (2, 1)
    assert done.line().startswith("ymir-conformance: reaped 2 containers and 1 workspace left by 2 sessions")
    assert "pid 2222: not running" in done.line()
    one = runner.Reaped(1, 1, {"pid 1234": "not running"})
    assert one.line() == ("ymir-conformance: reaped 1 container and 1 workspace left by a session that was killed "
                          "(pid 1234: not running)")
