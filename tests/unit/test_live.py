"""The live status lines (report/live.py): text, pacing (interval, 10 % steps, -q), the xdist status files."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

from ymir_conformance.report.live import (Board, Pacer, Status, clock, collect, inline_text, publish,
                                          status_text)

TASK = "t" * 32


def record(percent: float, state: int = 2) -> str:
    return f"{TASK}\t{time.time():.6f}\t{percent:.4f}\t{state}\t0\n"


def st(elapsed: float, percent: float | None = None, budget: float | None = 300.0, **kw: object) -> Status:
    return Status(key=str(kw.pop("key", "c1")), run=str(kw.pop("run", "det-voc")), elapsed_s=elapsed,
                  budget_s=budget, percent=percent, **kw)  # type: ignore[arg-type]


def test_clock() -> None:
    assert [clock(s) for s in (0, 7.9, 65, 725, 3723, -4)] == ["0:00", "0:07", "1:05", "12:05", "1:02:03", "0:00"]


def test_status_line_has_run_percent_elapsed_and_budget_left() -> None:
    assert status_text(st(80.4, 0.4)) == \
        "ymir-conformance det-voc: 40%, 1:20 elapsed, 3:39 left of the 5:00 budget"
    assert status_text(st(320, 0.93, worker="gw1")) == \
        "ymir-conformance [gw1] det-voc: 93%, 5:20 elapsed, 0:20 over the 5:00 budget"
    assert status_text(st(3, None)) == "ymir-conformance det-voc: no progress yet, 0:03 elapsed, 4:57 left of the " \
                                       "5:00 budget"
    assert "starting the container" in status_text(st(1, None, started=False))
    assert "100% (done, not exited yet)" in status_text(st(50, 1.0))
    assert "99% (done, not exited yet)" in status_text(st(50, 0.99, state=3))  # state 3: DONE
    assert "failed at 30% (monitor.txt state 4)" in status_text(st(50, 0.3, state=4))
    assert status_text(st(10, 0.5, budget=None)) == "ymir-conformance det-voc: 50%, 0:10 elapsed"


def test_step_is_the_10_percent_bucket() -> None:
    assert [st(1, p).step for p in (0.0, 0.099, 0.1, 0.35, 0.999, 1.0, 1.7)] == [0, 0, 1, 3, 9, 10, 10]
    assert st(1, None).step is None and st(1, float("nan")).step is None


def simulate(pacer: Pacer, percent_at: dict[float, float], seconds: int, tick: float = 1.0) -> list[Status]:
    """Drive the pacer as the render thread does (one check per tick) for a run whose percent changes at the
    given times; returns the statuses printed."""
    printed = []
    percent = None
    t = 0.0
    while t <= seconds:
        for at in sorted(percent_at):
            if at <= t:
                percent = percent_at[at]
        printed += pacer.due([st(t, percent)], now=1000.0 + t)
        t += tick
    return printed


def test_plain_lines_at_least_every_interval_and_on_every_10_percent_step() -> None:
    # 4 epochs of ~17 s, each ending with a burst of progress: 10 -> 31 -> 52 -> 74 -> 95 -> 100 %
    schedule = {2.0: 0.1, 19.0: 0.31, 36.0: 0.52, 53.0: 0.74, 70.0: 0.95, 71.0: 1.0}
    printed = simulate(Pacer(30.0), schedule, 72)
    times = [p.elapsed_s for p in printed]
    assert times[0] == 5.0  # the first line after QUIET_START_S
    assert all(b - a <= 30.0 for a, b in zip([0.0, *times], times))
    # a line at the tick each step was reached (after the quiet start: a quick run prints nothing)
    for at, percent in [(at, p) for at, p in schedule.items() if at >= 5.0]:
        assert any(p.elapsed_s == at and p.percent == percent for p in printed), (at, times)
    # and nothing in between but the interval lines
    assert times == [5.0, 19.0, 36.0, 53.0, 70.0, 71.0]  # each step came less than 29 s after the last line


def test_plain_lines_keep_coming_without_progress() -> None:
    printed = simulate(Pacer(30.0), {1.0: 0.1}, 200)
    times = [p.elapsed_s for p in printed]
    assert times == [5.0, 34.0, 63.0, 92.0, 121.0, 150.0, 179.0]  # due a tick early: never more than 30 s apart


def test_quiet_prints_only_the_interval_lines() -> None:
    schedule = {2.0: 0.1, 19.0: 0.31, 36.0: 0.52, 53.0: 0.74, 70.0: 0.95}
    printed = simulate(Pacer(30.0, steps=False), schedule, 100)
    assert [p.elapsed_s for p in printed] == [29.0, 58.0, 87.0]
    assert simulate(Pacer(30.0, steps=False), {1.0: 0.5}, 20) == []  # a short run prints nothing with -q


def test_interval_is_configurable_and_ended_runs_are_forgotten() -> None:
    pacer = Pacer(4.0, tick_s=0.5)
    assert [p.elapsed_s for p in simulate(pacer, {0.0: 0.2}, 12, tick=0.5)] == [3.5, 7.0, 10.5]
    assert pacer.due([], now=2000.0) == [] and not pacer._last


def test_several_containers_each_get_their_lines() -> None:
    pacer = Pacer(30.0)
    out = pacer.due([st(6, 0.1, key="a", run="det-voc"), st(2, 0.0, key="b", run="infer-det-voc")], now=1.0)
    assert [s.run for s in out] == ["det-voc"]  # b is still in its quiet start
    out = pacer.due([st(7, 0.2, key="a", run="det-voc"), st(6, 0.0, key="b", run="infer-det-voc")], now=2.0)
    assert [s.run for s in out] == ["det-voc", "infer-det-voc"]


def test_inline_text_fits_the_width() -> None:
    statuses = [st(80, 0.4, key="a"), st(10, None, key="b", run="infer-det-voc", worker="gw0")]
    text = inline_text(statuses, 200)
    assert text == " > det-voc 40% 1:20, 3:40 left | [gw0] infer-det-voc no progress yet 0:10, 4:50 left"
    assert len(inline_text(statuses, 30)) == 30 and inline_text(statuses, 30).endswith("...")
    assert inline_text(statuses, 8) == "" and inline_text([], 100) == ""


def test_board_reads_the_sampler_and_ignores_the_platform_pending_line() -> None:
    board = Board()
    latest = {"raw": f"{TASK}\t{time.time():.6f}\t0.0000\t1\t0\n"}  # the platform's PENDING record
    with board.run("ctr-1", "det-voc", 300.0):
        [s] = board.statuses(time.monotonic())
        assert not s.started and s.percent is None
        board.attach("ctr-1", time.monotonic() - 12, lambda: latest["raw"])
        board.attach("unknown", 0.0, lambda: None)  # the runner on its own: no entry, nothing happens
        [s] = board.statuses(time.monotonic(), worker="gw2")
        assert s.started and s.percent is None and 12 <= s.elapsed_s < 20 and s.key == "gw2/ctr-1"
        latest["raw"] = record(0.42)
        [s] = board.statuses(time.monotonic())
        assert s.percent == 0.42 and s.state == 2 and s.budget_s == 300.0
        latest["raw"] = "garbage"
        assert board.statuses(time.monotonic())[0].percent is None
    assert len(board) == 0


def test_worker_files_round_trip_and_stale_or_broken_ones_are_skipped(tmp_path: Path) -> None:
    now = time.time()
    publish(tmp_path, "gw0", [st(40, 0.5, key="ctr")], now - 2)
    publish(tmp_path, "gw1", [st(40, 0.5, key="old")], now - 60)  # a crashed worker's last file
    (tmp_path / "gw2.json").write_text("{not json")
    (tmp_path / "gw3.json").write_text(json.dumps({"written": now, "statuses": [{"key": "x", "state": "2",
                                                                                  "percent": "lots"}, 5]}))
    got = {s.key: s for s in collect(tmp_path, now)}
    assert set(got) == {"gw0/ctr", "gw3/x"}
    s = got["gw0/ctr"]
    assert s.worker == "gw0" and s.percent == 0.5 and 41.9 < s.elapsed_s < 42.1  # moved on by the file's age
    assert got["gw3/x"].percent is None and got["gw3/x"].state is None  # only numbers are taken
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary file left
    assert collect(tmp_path / "missing", now) == []


class FakeWriter:
    """What LiveStatus reads of pytest's terminal writer: the width, pytest's current line, the markup."""

    def __init__(self, current: str = "", fullwidth: int = 80) -> None:
        self.current = current
        self.fullwidth = fullwidth

    @property
    def width_of_current_line(self) -> int:
        return len(self.current)

    def markup(self, text: str, **kw: bool) -> str:
        return text


class FakeConfig:
    def __init__(self, tw: FakeWriter) -> None:
        self.tw = tw

    def get_terminal_writer(self) -> FakeWriter:
        return self.tw


def live_with(tw: FakeWriter) -> tuple[object, io.StringIO]:
    from ymir_conformance.report.live import LiveStatus

    live = LiveStatus(FakeConfig(tw), 30.0)  # type: ignore[arg-type]
    out = io.StringIO()
    live._out = out  # type: ignore[assignment]  # our duplicate of stdout
    return live, out


def test_plain_lines_start_on_a_line_of_their_own() -> None:
    tw = FakeWriter("suite/test_conformance.py .")
    live, out = live_with(tw)
    live._lines(["ymir-conformance det-voc: 10%"])  # type: ignore[attr-defined]
    live._lines(["ymir-conformance det-voc: 20%"])  # type: ignore[attr-defined]  # pytest wrote nothing since
    tw.current += ".."  # pytest went on with its dots
    live._lines(["ymir-conformance det-voc: 30%"])  # type: ignore[attr-defined]
    assert out.getvalue() == ("\nymir-conformance det-voc: 10%\nymir-conformance det-voc: 20%\n"
                              "\nymir-conformance det-voc: 30%\n")
    tw2 = FakeWriter("")
    live2, out2 = live_with(tw2)
    live2._lines(["a", "b"])  # type: ignore[attr-defined]
    assert out2.getvalue() == "a\nb\n"


def test_in_place_status_is_redrawn_and_erased_before_pytest_writes() -> None:
    tw = FakeWriter("suite/test_conformance.py .", fullwidth=60)
    live, out = live_with(tw)
    live._draw([st(80, 0.4)])  # type: ignore[attr-defined]
    first = " > det-voc 40% 1:20, 3:40 left"
    assert out.getvalue() == first
    live._draw([st(81, 0.4)])  # type: ignore[attr-defined]  # redrawn over itself
    assert out.getvalue() == first + "\b" * len(first) + " > det-voc 40% 1:21, 3:39 left"
    mark = len(out.getvalue())
    live._erase()  # type: ignore[attr-defined]  # a result is about to be written
    assert out.getvalue()[mark:] == "\b" * len(first) + " " * len(first) + "\b" * len(first)
    live._draw([st(82, 0.4)])  # type: ignore[attr-defined]  # held off a moment: pytest is writing
    assert len(out.getvalue()) == mark + 3 * len(first)
    long = [st(80, 0.4, key=str(i), run=f"infer-det-voc-{i}") for i in range(5)]
    live._hold_until = 0.0  # type: ignore[attr-defined]
    live._draw(long)  # type: ignore[attr-defined]
    assert len(out.getvalue()) - mark - 3 * len(first) == 60 - len(tw.current) - 1  # cut to the width
