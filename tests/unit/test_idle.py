"""idle.py: a done run counts as "never exits" only after a whole grace period with no CPU time and no write."""
from __future__ import annotations

import os
from pathlib import Path

from ymir_conformance.idle import CPU_WINDOW_S, IdleWatch, OutWrites


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def watch(cpu: list[float | None], out: Path | None = None, grace: float = 10.0) -> tuple[IdleWatch, Clock]:
    clock = Clock()
    w = IdleWatch(grace, lambda: cpu[0], out, clock=clock)
    return w, clock


def test_sleeping_after_done_is_idle_after_the_grace() -> None:
    cpu: list[float | None] = [5.0]
    w, clock = watch(cpu)
    assert not w.idle()  # not done yet
    w.done()
    for _ in range(9):
        clock.t += 1.0
        cpu[0] = (cpu[0] or 0) + 0.001  # a heartbeat thread: 1 ms/s, under the threshold
        assert not w.idle()
    clock.t += 1.0
    assert w.idle()
    assert "no CPU time used" in w.observed and w.worked_after_done_s == 0.0


def test_computing_after_done_is_not_idle_however_long() -> None:
    cpu: list[float | None] = [5.0]
    w, clock = watch(cpu)
    w.done()
    for _ in range(60):  # a minute of work at a tenth of a core (a loaded host)
        clock.t += 1.0
        cpu[0] = (cpu[0] or 0) + 0.1
        assert not w.idle()
    for _ in range(int(10 / CPU_WINDOW_S) + 2):  # then it stops working
        clock.t += CPU_WINDOW_S
        w.idle()
    assert w.idle() and w.last_busy == "CPU" and 55 <= w.worked_after_done_s <= 62


def test_nothing_observable_is_a_clock() -> None:
    w, clock = watch([None])
    w.done()
    clock.t += 9.9
    assert not w.idle()
    clock.t += 0.2
    assert w.idle() and "clock" in w.observed


def test_file_writes_under_out_count_as_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "models").mkdir(parents=True)
    w, clock = watch([None], out)
    w.done()
    assert w.writes is not None and w.writes.ino is not None
    for i in range(15):
        clock.t += 1.0
        sub = out / "models" / f"d{i % 3}"  # new directories are watched as they appear
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}").write_bytes(b"x")
        assert not w.idle()
    assert w.last_busy == "files"
    clock.t += 10.0
    assert w.idle() and "no file written under /out" in w.observed
    w.close()


def test_out_writes_follow_no_link_and_are_capped(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "link")
    for i in range(5):
        (out / f"d{i}").mkdir()
    ow = OutWrites(out, max_watches=3).start()
    try:
        assert len(ow.fds) == 3 and ow.capped
        (outside / "written-through-a-link").write_text("x")
        assert ow.poll() == 0  # the link's target is not watched
    finally:
        ow.close()
