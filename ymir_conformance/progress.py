"""Live audit of /out/monitor.txt while the container runs.

A background thread polls the file tightly (``stat`` every ``interval_s``, read only when size or mtime
changed, or the inode changed after an atomic rename) and keeps every *distinct* content it saw, with the time
it was seen. Executors write at most every ~100 ms in practice; a 10 ms poll of one small file costs little and
sees them all (measured by ``benchmarks/bench_progress.py``). The series is judged by the MON-* checks and kept
on the run for reports.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from . import guard
from .errors import UnsafeOutput
from .model import ProgressSample

MAX_MONITOR_BYTES = guard.CAPS["monitor"]  # the platform keeps 100 lines; we keep at most this much of each content
MAX_SAMPLES = 20_000


class MonitorSampler:
    def __init__(self, path: Path, interval_s: float = 0.01) -> None:
        self.path = path
        self.interval_s = interval_s
        self._samples: list[ProgressSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._last_sig: tuple[int, int, int] | None = None
        self._last_raw: str | None = None
        self.polls = 0

    def start(self) -> None:
        self._t0 = time.monotonic()
        # The platform's own PENDING line is there before start: record it as the baseline, not as a sample.
        self._read(record=False)
        self._thread = threading.Thread(target=self._loop, name="ymir-monitor-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[ProgressSample]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._read(record=True)  # the final content, if it changed after the last poll
        return list(self._samples)

    @property
    def latest(self) -> str | None:
        """The newest content seen (the platform's PENDING line before the image writes anything)."""
        return self._last_raw

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._read(record=True)
            self._stop.wait(self.interval_s)

    def _read(self, record: bool) -> None:
        self.polls += 1
        try:
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
