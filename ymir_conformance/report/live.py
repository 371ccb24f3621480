"""Live status of the running task containers: run id, percent from monitor.txt, elapsed time, budget left.

Real executors train for minutes to hours, and CI systems kill jobs that print nothing for a while. While
containers run, this module shows one status per running container:

* on a terminal (TTY): redrawn in place every second at the end of pytest's current line (all running containers
  on that one line, cut to the terminal's width), erased before pytest writes a result. ``-q`` keeps it (it takes
  no line); ``-qq`` turns it off.
* on anything else (a CI log): plain lines, one per running container, at least every ``--ymir-status-interval``
  seconds (default 30; also with ``-q``) and, unless ``-q``, whenever its percent reaches another 10 % step. A
  run's first line comes after :data:`QUIET_START_S` seconds, so a quick run prints none.

Where the data come from: :data:`BOARD`, the process's registry of running containers. ``session.py`` opens an
entry around each container run (:meth:`Board.run`: run id and total budget), ``runner.py`` attaches the live
monitor.txt sampler once the container started (:meth:`Board.attach`); the percent is the sampler's latest
content (``progress.py``: inotify on /out), parsed as the platform parses it.

pytest-xdist: workers have no terminal. The controller makes a private folder and hands it to every worker
(``workerinput``); each worker's render thread writes its running containers to ``<folder>/<worker>.json``
every second (atomically), and the controller's thread reads them all and prints the lines as for its own runs,
prefixed with the worker's id. A file is used rather than an execnet channel: xdist owns the workers' channel
and dispatches every message on it to its own handlers (an unknown one ends the session), and
``workeroutput`` only travels when a worker finishes; a file needs nothing from xdist's internals, survives a
worker crash (a file older than :data:`STALE_S` is ignored) and costs a write per second.

Output: pytest's own terminal writer (``config.get_terminal_writer()``) for the width, the current line and
the markup, and a duplicate of the stdout descriptor taken at session start for the bytes. During a test pytest
redirects descriptor 1 into its capture (``--capture=fd``), so a write through ``sys.stdout`` from a thread would
land in the test's captured output instead of the log.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from ..progress import parse_record

QUIET_START_S = 5.0  # a run's first plain line comes after this long (a quick run prints none)
TICK_S = 1.0  # the render thread's period (the in-place redraw; the plain lines' clock)
STALE_S = 15.0  # a worker's status file older than this is a dead worker's
HOLD_OFF_S = 0.3  # after pytest wrote (a result), the in-place status waits this long before it is redrawn
PENDING_STATE = 1  # the platform's own monitor.txt line before the image writes anything


# -- the registry of running containers ---------------------------------------------------------------------

@dataclass
class _Entry:
    run: str
    budget_s: float | None
    created: float  # time.monotonic() when the entry was opened (the container is being created)
    started: float | None = None  # when the container started
    latest: Callable[[], str | None] | None = None  # the sampler's latest monitor.txt content


class Board:
    """The running task containers of this process (thread-safe): ``session.py`` opens an entry per container run,
    ``runner.py`` attaches its monitor sampler; the render thread reads :meth:`statuses`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @contextlib.contextmanager
    def run(self, key: str, run: str, budget_s: float | None) -> Iterator[None]:
        """An entry for the container ``key`` (its name) while the block runs."""
        with self._lock:
            self._entries[key] = _Entry(run, budget_s, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._entries.pop(key, None)

    def attach(self, key: str, started: float, latest: Callable[[], str | None]) -> None:
        """The container ``key`` started at ``started`` (monotonic); ``latest`` gives monitor.txt's content. No-op
        for a container without an entry (the runner used on its own)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.started, entry.latest = started, latest

    def statuses(self, now: float, worker: str = "") -> list[Status]:
        with self._lock:
            entries = list(self._entries.items())
        out = []
        for key, e in entries:
            raw = None
            if e.latest is not None:
                try:
                    raw = e.latest()
                except Exception:  # a sampler that went away: no percent
                    raw = None
            rec = parse_record(raw) if raw else None
            out.append(Status(
                key=f"{worker}/{key}" if worker else key, run=e.run, worker=worker,
                elapsed_s=max(0.0, now - (e.started if e.started is not None else e.created)),
                budget_s=e.budget_s, started=e.started is not None,
                percent=rec[1] if rec is not None and rec[2] != PENDING_STATE else None,
                state=rec[2] if rec is not None else None))
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


BOARD = Board()


# -- one status and its text ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Status:
    key: str  # unique per running container (worker/container name)
    run: str  # the run id (e.g. det-voc, infer-det-voc)
    elapsed_s: float  # since the container started (or since it was being created, when not started yet)
    budget_s: float | None  # the total budget (BUD-01)
    percent: float | None = None  # monitor.txt's percent; None before the image wrote a record
    state: int | None = None  # monitor.txt's state
    started: bool = True
    worker: str = ""  # the xdist worker that runs it ("" without xdist)

    @property
    def step(self) -> int | None:
        """The 10 % step the percent is in (0..10), None without a percent."""
        if self.percent is None or not math.isfinite(self.percent):
            return None
        return max(0, min(10, int(self.percent * 10 + 1e-9)))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "run": self.run, "elapsed_s": self.elapsed_s, "budget_s": self.budget_s,
                "percent": self.percent, "state": self.state, "started": self.started}

    @classmethod
    def from_json(cls, d: dict[str, Any], worker: str, age_s: float) -> Status:
        """A worker's status, ``age_s`` seconds old: its elapsed time moves on by that much."""
        def num(v: Any) -> float | None:
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        return cls(key=f"{worker}/{d.get('key')}", run=str(d.get("run", "?"))[:120],
                   elapsed_s=(num(d.get("elapsed_s")) or 0.0) + max(0.0, age_s), budget_s=num(d.get("budget_s")),
                   percent=num(d.get("percent")), state=int(d["state"]) if isinstance(d.get("state"), int) else None,
                   started=bool(d.get("started", True)), worker=worker)


def clock(seconds: float) -> str:
    """0:07, 12:05, 1:02:03."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _progress(st: Status) -> str:
    if not st.started:
        return "starting the container"
    if st.state == 4:
        return f"failed at {st.percent * 100:.0f}% (monitor.txt state 4)" if st.percent is not None else "failed"
    if st.percent is None:
        return "no progress yet"
    done = " (done, not exited yet)" if st.state == 3 or st.percent >= 1.0 else ""
    return f"{st.percent * 100:.0f}%{done}"


def _budget(st: Status, short: bool = False) -> str:
    if st.budget_s is None:
        return ""
    left = st.budget_s - st.elapsed_s
    if short:
        return f"{clock(left)} left" if left >= 0 else f"{clock(-left)} over budget"
    if left >= 0:
        return f"{clock(left)} left of the {clock(st.budget_s)} budget"
    return f"{clock(-left)} over the {clock(st.budget_s)} budget"


def status_text(st: Status) -> str:
    """One plain line: 'ymir-conformance [gw0] det-voc: 40%, 1:20 elapsed, 3:40 left of the 5:00 budget'."""
    who = f" [{st.worker}]" if st.worker else ""
    parts = [_progress(st), f"{clock(st.elapsed_s)} elapsed"]
    if st.budget_s is not None:
        parts.append(_budget(st))
    return f"ymir-conformance{who} {st.run}: " + ", ".join(parts)


def inline_text(statuses: list[Status], width: int) -> str:
    """The in-place segment for a terminal: every running container, cut to ``width`` characters ('' if < 12)."""
    if width < 12 or not statuses:
        return ""
    items = []
    for st in sorted(statuses, key=lambda s: (s.worker, s.run)):
        who = f"[{st.worker}] " if st.worker else ""
        budget = f", {_budget(st, short=True)}" if st.budget_s is not None else ""
        items.append(f"{who}{st.run} {_progress(st)} {clock(st.elapsed_s)}{budget}")
    text = " > " + " | ".join(items)
    return text if len(text) <= width else text[: width - 3] + "..."


# -- when a plain line is due ----------------------------------------------------------------------------------

@dataclass
class Pacer:
    """Which running containers get a plain line now (non-TTY). A run's first line comes once it has run
    ``quiet_start_s`` (with ``steps`` off, i.e. ``-q``: once it has run the interval); then one at least every
    ``interval_s`` and, with ``steps``, one whenever its percent is in another 10 % step. Lines are checked on the
    render thread's ticks, so a line is due ``tick_s`` early: no two lines of a run are more than the interval
    apart."""

    interval_s: float
    tick_s: float = TICK_S
    steps: bool = True
    quiet_start_s: float = QUIET_START_S
    _last: dict[str, tuple[float, int | None]] = field(default_factory=dict)

    def due(self, statuses: list[Status], now: float) -> list[Status]:
        every = max(0.0, self.interval_s - self.tick_s)
        first = min(self.quiet_start_s, every) if self.steps else every
        out = []
        for st in statuses:
            last = self._last.get(st.key)
            if last is None:
                if st.elapsed_s < first:
                    continue
            elif now - last[0] < every and not (self.steps and st.step is not None and st.step != last[1]):
                continue
            self._last[st.key] = (now, st.step)
            out.append(st)
        alive = {st.key for st in statuses}
        for key in [k for k in self._last if k not in alive]:
            del self._last[key]
        return out


# -- pytest-xdist: workers publish, the controller collects ----------------------------------------------------

def publish(folder: Path, worker: str, statuses: list[Status], now_wall: float) -> None:
    """A worker's running containers, written atomically to ``<folder>/<worker>.json``."""
    data = json.dumps({"written": now_wall, "statuses": [s.to_json() for s in statuses]})
    tmp = folder / f".{worker}.{os.getpid()}.tmp"
    tmp.write_text(data)
    os.replace(tmp, folder / f"{worker}.json")


def collect(folder: Path, now_wall: float) -> list[Status]:
    """Every live worker's running containers (files older than STALE_S are a dead worker's: skipped)."""
    out: list[Status] = []
    try:
        names = sorted(p for p in os.listdir(folder) if p.endswith(".json") and not p.startswith("."))
    except OSError:
        return out
    for name in names:
        try:
            with open(folder / name, "rb") as f:
                data = json.loads(f.read(1 << 20))
            age = now_wall - float(data["written"])
            if age > STALE_S:
                continue
            out.extend(Status.from_json(d, name[:-5], age) for d in data["statuses"] if isinstance(d, dict))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or a partial write of a crashed worker
    return out


# -- the pytest side -------------------------------------------------------------------------------------------

class LiveStatus:
    """The plugin object: a render thread (controller or single process) or a publishing thread (xdist worker)."""

    def __init__(self, config: pytest.Config, interval_s: float | None) -> None:
        self.config = config
        self.interval_s = interval_s
        workerinput = getattr(config, "workerinput", None)
        self.worker = str(workerinput.get("workerid", "")) if workerinput is not None else ""
        folder = workerinput.get("ymir_live_dir") if workerinput is not None else None
        self.publish_to = Path(folder) if folder else None  # a worker: where its statuses go
        self.folder: Path | None = None  # the controller: the folder workers publish to
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._out: IO[str] | None = None  # our duplicate of stdout
        self._tty = False
        self._pacer: Pacer | None = None
        self._drawn = 0  # characters of the in-place status on screen
        self._hold_until = 0.0
        self._after_width: int | None = None  # pytest's current-line width right after our last plain line
        self._published = False

    # -- hooks --
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: hand each worker the folder its statuses go to."""
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="ymir-live-"))
        node.workerinput["ymir_live_dir"] = str(self.folder)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.publish_to is not None:
            self._start(self._publish_tick)
            return
        if getattr(self.config, "workerinput", None) is not None:
            return  # a worker without a folder: nothing to show
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        try:
            fd = os.dup(sys.stdout.fileno())
            self._out = os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
            self._tty = os.isatty(fd)
        except (OSError, ValueError, AttributeError):  # no descriptor (e.g. pytester in-process): the writer's own
            self._out = None
            self._tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
        quiet = self.config.get_verbosity() < 0
        if self._tty:
            if self.config.get_verbosity() <= -2:
                return
        elif self.interval_s is None:
            return
        else:
            self._pacer = Pacer(self.interval_s, tick_s=min(TICK_S, self.interval_s / 2), steps=not quiet)
        self._start(self._render_tick)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        self._erase()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self) -> None:
        self._erase()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self) -> None:
        self._erase()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self) -> None:
        self.stop()

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self) -> None:
        self.stop()

    def pytest_unconfigure(self) -> None:
        self.stop()
        if self._out is not None:
            with contextlib.suppress(OSError):
                self._out.close()
            self._out = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # -- the thread --
    def _start(self, tick: Callable[[], None]) -> None:
        def loop() -> None:
            period = TICK_S if self._pacer is None else self._pacer.tick_s
            while not self._stop.wait(period):
                try:
                    tick()
                except Exception:  # never let the status take the session down: stop showing it
                    return

        self._thread = threading.Thread(target=loop, name="ymir-live-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        self._erase()
        if self.publish_to is not None and self._published:
            with contextlib.suppress(OSError):
                publish(self.publish_to, self.worker, [], time.time())

    def statuses(self) -> list[Status]:
        out = BOARD.statuses(time.monotonic(), self.worker)
        if self.folder is not None:
            out.extend(collect(self.folder, time.time()))
        return out

    def _publish_tick(self) -> None:
        assert self.publish_to is not None
        statuses = BOARD.statuses(time.monotonic())
        if statuses or self._published:
            publish(self.publish_to, self.worker, statuses, time.time())
            self._published = bool(statuses)

    def _render_tick(self) -> None:
        statuses = self.statuses()
        if self._tty:
            self._draw(statuses)
        elif self._pacer is not None:
            due = self._pacer.due(statuses, time.monotonic())
            if due:
                self._lines([status_text(s) for s in due])

    # -- writing --
    def _writer(self) -> Any:
        return self.config.get_terminal_writer()

    def _write(self, text: str) -> None:
        if self._out is not None:
            self._out.write(text)
            self._out.flush()
        else:
            self._writer().write(text, flush=True)

    def _lines(self, lines: list[str]) -> None:
        """Plain lines (non-TTY), each on a line of its own."""
        tw = self._writer()
        with self._lock:
            width = tw.width_of_current_line
            # pytest's line (e.g. 'suite/test_conformance.py ..') is unfinished when it has text we did not end
            start = "\n" if width and width != self._after_width else ""
            self._write(start + "".join(tw.markup(line, cyan=True) + "\n" for line in lines))
            self._after_width = width

    def _draw(self, statuses: list[Status]) -> None:
        """The in-place segment after pytest's current line: backspace over the old one, write the new."""
        tw = self._writer()
        with self._lock:
            if time.monotonic() < self._hold_until:
                return
            text = inline_text(statuses, tw.fullwidth - tw.width_of_current_line - 1)
            pad = max(0, self._drawn - len(text))
            if not text and not self._drawn:
                return
            self._write("\b" * self._drawn + (tw.markup(text, cyan=True) if text else "") + " " * pad + "\b" * pad)
            self._drawn = len(text)

    def _erase(self) -> None:
        """Before pytest writes: take the in-place status off the line (redrawn a moment later)."""
        with self._lock:
            self._hold_until = time.monotonic() + HOLD_OFF_S
            if self._drawn:
                n, self._drawn = self._drawn, 0
                with contextlib.suppress(OSError, ValueError):
                    self._write("\b" * n + " " * n + "\b" * n)
