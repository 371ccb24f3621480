"""Live audit of /out/monitor.txt while the container runs.

A background thread is woken by inotify (the bind mount's host side: the kernel reports what the container does
there): ``IN_CLOSE_WRITE``, ``IN_MOVED_TO`` and ``IN_CREATE`` naming ``monitor.txt`` on the ``/out`` directory (a
plain write, an atomic rename, a new file) and ``IN_MODIFY`` on ``monitor.txt`` itself (a write in place through a
file kept open; watched per inode, re-added when the file is replaced, so the executor log's writes into ``/out``
wake nothing). It then reads the file through
:func:`guard.read_head` (no link, FIFO or device is ever opened) when its inode, size or mtime changed, and keeps
every *distinct* content it saw, with the time it was seen. A slow poll (``FALLBACK_S``) stays as a safety net,
and without inotify (no Linux, the per-user limits reached) the thread polls every ``interval_s`` as before.
Measured by ``benchmarks/bench_progress.py`` (capture rate and the sampler's own CPU at a 10 ms writer). The
series is judged by the MON-* checks and kept on the run for reports.
"""
from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

from . import guard
from .errors import UnsafeOutput
from .inotify import (IN_CLOSE_WRITE, IN_CREATE, IN_DONT_FOLLOW, IN_IGNORED, IN_MODIFY, IN_MOVED_TO, IN_ONLYDIR,
                      IN_Q_OVERFLOW, Inotify)
from .model import ProgressSample

MAX_MONITOR_BYTES = guard.CAPS["monitor"]  # the platform keeps 100 lines; we keep at most this much of each content
MAX_SAMPLES = 20_000
FALLBACK_S = 0.25  # with inotify: a stat every 250 ms all the same (an event the kernel dropped, a queue overflow)
DIR_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW
FILE_MASK = IN_MODIFY | IN_DONT_FOLLOW  # a link is watched as the link: it never reports writes elsewhere


class MonitorSampler:
    def __init__(self, path: Path, interval_s: float = 0.01, use_inotify: bool = True) -> None:
        self.path = path
        self.interval_s = interval_s  # the poll interval when inotify is not available
        self.use_inotify = use_inotify
        self._name = os.fsencode(path.name)
        self._samples: list[ProgressSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_sig: tuple[int, int, int] | None = None
        self._last_raw: str | None = None
        self._inotify: Inotify | None = None
        self._dir_wd = -1
        self._wake_r = self._wake_w = -1
        self.mode = "poll"  # inotify | poll: how the thread is woken
        self.polls = 0  # stat calls (each may lead to a read)
        self.wakeups = 0  # inotify wake-ups
        self.cpu_s = 0.0  # the sampler thread's own CPU time (time.thread_time), known after stop()

    def start(self) -> None:
        self._t0 = time.monotonic()
        if self.use_inotify:
            self._setup_inotify()
        # The platform's own PENDING line is there before start: record it as the baseline, not as a sample.
        # Read after the watch is set: a write between the two is then seen by one or the other.
        self._read(record=False)
        self._thread = threading.Thread(target=self._loop, name="ymir-monitor-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[ProgressSample]:
        if self._thread is not None:
            self._stop.set()
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except OSError:
                    pass
            self._thread.join(timeout=5)
            self._thread = None
            self._read(record=True)  # the final content, if it changed after the last read
        self._close()
        return list(self._samples)

    @property
    def latest(self) -> str | None:
        """The newest content seen (the platform's PENDING line before the image writes anything)."""
        return self._last_raw

    def _setup_inotify(self) -> None:
        try:
            ino = Inotify()
        except (OSError, AttributeError):  # AttributeError: a libc without inotify
            return
        try:
            self._dir_wd = ino.add_watch(self.path.parent, DIR_MASK)
            self._watch_file(ino)
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            ino.close()
            return
        self._inotify = ino
        self.mode = "inotify"

    def _watch_file(self, ino: Inotify) -> None:
        """IN_MODIFY on the current monitor.txt inode (absent: its IN_CREATE on the directory comes first)."""
        try:
            ino.add_watch(self.path, FILE_MASK)
        except OSError:
            pass

    def _close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = -1

    def _loop(self) -> None:
        t0 = time.thread_time()
        try:
            if self._inotify is not None:
                self._watch(self._inotify)
            else:
                while not self._stop.is_set():
                    self._read(record=True)
                    self._stop.wait(self.interval_s)
        finally:
            self.cpu_s += time.thread_time() - t0

    def _watch(self, ino: Inotify) -> None:
        poller = select.poll()
        poller.register(ino.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        name, fd, timeout_ms = self._name, ino.fd, int(FALLBACK_S * 1000)
        while not self._stop.is_set():
            try:
                ready = poller.poll(timeout_ms)
            except OSError:
                break
            if not ready:  # the slow fallback poll
                self._read(record=True)
                continue
            if not any(r[0] == fd for r in ready):
                continue  # stop() woke us
            self.wakeups += 1
            relevant = False
            for wd, mask, event_name in ino.read():
                if mask & IN_IGNORED:
                    if wd == self._dir_wd:  # the watched directory went away: poll from now on
                        self._poll_rest()
                        return
                    continue  # a replaced monitor.txt's old inode
                if mask & IN_Q_OVERFLOW or wd != self._dir_wd:  # overflow, or IN_MODIFY on monitor.txt
                    relevant = True
                elif event_name == name:
                    relevant = True
                    if mask & (IN_MOVED_TO | IN_CREATE):  # a new inode: watch its writes in place
                        self._watch_file(ino)
            if relevant:  # the file changed: read it even when inode, size and (coarse) mtime look the same
                self._read(record=True, force=True)

    def _poll_rest(self) -> None:
        self.mode = "poll"
        while not self._stop.is_set():
            self._read(record=True)
            self._stop.wait(self.interval_s)

    def _read(self, record: bool, force: bool = False) -> None:
        self.polls += 1
        try:
            if force:  # inotify said it changed: no stat first (the next fallback poll re-reads it once)
                sig = None
            else:
                st = os.stat(self.path, follow_symlinks=False)
                sig = (st.st_ino, st.st_size, st.st_mtime_ns)
                if sig == self._last_sig:
                    return
            raw = guard.read_head(self.path.parent, self.path.name, MAX_MONITOR_BYTES).decode("utf-8", errors="replace")
        except (OSError, UnsafeOutput):  # absent, or a link/FIFO/device: MON-01 reports it from the final file
            return
        self._last_sig = sig
        if raw == self._last_raw:
            return
        self._last_raw = raw
        if record and len(self._samples) < MAX_SAMPLES:
            self._samples.append(ProgressSample(seen_s=time.monotonic() - self._t0, raw=raw))


def parse_record(raw: str) -> tuple[float, float, int] | None:
    """(timestamp, percent, state) of line 1, or None if it does not parse as the platform parses it."""
    line = raw.split("\n", 1)[0]
    fields = line.split("\t")
    if len(fields) < 4:
        return None
    try:
        return float(fields[1]), float(fields[2]), int(fields[3])
    except ValueError:
        return None


def timing_summary(samples: list[ProgressSample], duration_s: float) -> dict[str, float | None]:
    """First update latency and the longest gap between distinct updates (start and end included)."""
    times = [s.seen_s for s in samples]
    first = times[0] if times else None
    points = [0.0, *times, duration_s]
    gap = max((b - a for a, b in zip(points, points[1:])), default=duration_s)
    return {"first_update_s": first, "longest_gap_s": gap, "updates": float(len(times))}
