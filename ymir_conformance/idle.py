"""Is a run that looks done still working? "Never exits" is an observation, not a clock.

A run is *done* when monitor.txt says 100% (or state 3) and its result files exist (``runner.looks_done``). Real
executors often go on working after that: an ONNX export, a checkpoint conversion, TensorBoard data written
out, tens of thousands of small files. The platform waits for them (a plain ``docker run``), so the suite does
too: a done run is stopped as "never exits" (V1) only once it has been done AND idle for the whole exit grace
period. Idle means both:

* **no CPU time**: the container's cgroup (``cpuacct.usage`` on cgroup v1, ``cpu.stat usage_usec`` on v2, read by
  :class:`limits.CgroupProbe`; over the API with ``docker stats`` when the cgroup is not reachable, e.g. a remote
  engine) used less than :data:`IDLE_CPU_FRACTION` of one core over each :data:`CPU_WINDOW_S` window. A
  process that sleeps (``sleep infinity``, a thread blocked on a join) uses none; a little polling or a
  library's heartbeat thread uses a few milliseconds a second; any real work (even one core shared with ten
  other processes on a loaded host) uses far more. The threshold compares CPU time, not wall time, so a loaded
  host slows the work down but does not make it look idle;
* **no file written under /out**: inotify on /out and its subdirectories (the shared binding of inotify.py),
  set up when the run is first seen done: a write, a new file, a rename or a deletion anywhere watched counts
  as work. Watches are added through descriptors opened with O_NOFOLLOW (``/proc/self/fd/N``: no name is
  resolved on the host, no link is followed) and capped at :data:`MAX_WATCHES` directories; beyond that the
  CPU time alone decides (writing a file costs CPU time in the writer's cgroup too).

When neither can be observed (no cgroup, no stats, no inotify) the run is treated as idle once done, as before:
the grace period is then a clock.
"""
from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

from .inotify import (IN_CLOSE_WRITE, IN_CREATE, IN_ISDIR, IN_MODIFY, IN_MOVED_TO, IN_ONLYDIR,
                      IN_Q_OVERFLOW, Inotify)

IDLE_CPU_FRACTION = 0.02  # of one core: below this over a window the container counts as idle
CPU_WINDOW_S = 2.0
MAX_WATCHES = 256
IN_DELETE = 0x00000200
IN_MOVED_FROM = 0x00000040
IN_ATTRIB = 0x00000004
# no IN_DONT_FOLLOW: the path is /proc/self/fd/N, a magic link to the very directory opened with O_NOFOLLOW
WRITE_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_ONLYDIR
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class OutWrites:
    """inotify watches on a host directory tree (capped), counting write events. Never raises."""

    def __init__(self, root: Path, max_watches: int = MAX_WATCHES) -> None:
        self.root = root
        self.max_watches = max_watches
        self.ino: Inotify | None = None
        self.fds: dict[int, int] = {}  # wd -> an O_NOFOLLOW fd of the watched directory (to watch new children)
        self.events = 0
        self.overflowed = False  # the kernel dropped events: treated as activity
        self.capped = False  # more directories than max_watches: the rest are not watched
        self.problem = ""

    def start(self) -> OutWrites:
        try:
            self.ino = Inotify()
            top = os.open(self.root, DIR_FLAGS)
        except (OSError, AttributeError) as exc:  # no inotify (limits reached, not Linux), /out gone
            self.problem = f"inotify unavailable: {exc}"
            self.close()
            return self
        queue = [top]
        while queue:  # breadth first, through descriptors only
            fd = queue.pop(0)
            if not self._watch(fd):
                os.close(fd)
                for rest in queue:
                    os.close(rest)
                break
            try:
                names = os.listdir(fd)
            except OSError:
                continue
            for name in names:
                child = self._open_child(fd, name)
                if child is not None:
                    queue.append(child)
        return self

    def _open_child(self, parent_fd: int, name: str) -> int | None:
        try:
            if not stat.S_ISDIR(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
                return None
            return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        except OSError:
            return None

    def _watch(self, fd: int) -> bool:
        """Watch the directory open at ``fd`` (kept open, owned by this object); False once capped."""
        if self.ino is None or len(self.fds) >= self.max_watches:
            self.capped = self.ino is not None
            return False
        try:
            wd = self.ino.add_watch(f"/proc/self/fd/{fd}", WRITE_MASK)
        except OSError:
            os.close(fd)
            return True
        if wd in self.fds:  # the same directory again (a hard-linked view): one fd is enough
            os.close(fd)
        else:
            self.fds[wd] = fd
        return True

    def poll(self) -> int:
        """How many write events arrived since the last poll (new directories are watched as they appear)."""
        if self.ino is None:
            return 0
        n = 0
        for wd, mask, name in self.ino.read():
            n += 1
            if mask & IN_Q_OVERFLOW:
                self.overflowed = True
            elif mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO) and wd in self.fds and not self.capped:
                child = self._open_child(self.fds[wd], os.fsdecode(name))
                if child is not None and not self._watch(child):
                    os.close(child)
        self.events += n
        return n

    def close(self) -> None:
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()
        if self.ino is not None:
            self.ino.close()
            self.ino = None


class IdleWatch:
    """Decides when a done run has been idle for ``grace_s`` (see the module note).

    ``cpu`` returns the container's CPU seconds so far (None when unknown); ``out_dir`` is /out on the host (None
    when /out is not visible here, e.g. the archive transfer). Call :meth:`done` once when the run is first seen
    done, then :meth:`idle` on every poll.
    """

    def __init__(self, grace_s: float, cpu: Callable[[], float | None], out_dir: Path | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self.cpu = cpu
        self.out_dir = out_dir
        self.clock = clock
        self.writes: OutWrites | None = None
        self.quiet_since: float | None = None
        self.mark: tuple[float, float] | None = None  # (time, CPU seconds) at the start of the current window
        self.cpu_seen = False
        self.done_at: float | None = None
        self.last_busy_at: float | None = None  # when it was last seen working after done
        self.last_busy: str = ""  # what showed that work: "CPU" or "files"

    def done(self) -> None:
        now = self.clock()
        self.quiet_since = self.done_at = now
        if self.out_dir is not None:
            self.writes = OutWrites(self.out_dir).start()
        used = self.cpu()
        if used is not None:
            self.mark = (now, used)
            self.cpu_seen = True

    def idle(self) -> bool:
        """Whether the run has been idle for the whole grace period, as of now."""
        if self.quiet_since is None:
            return False
        now = self.clock()
        busy = ""
        if self.writes is not None and (self.writes.poll() or self.writes.overflowed):
            self.writes.overflowed = False
            busy = "files"
        if self.mark is None or now - self.mark[0] >= CPU_WINDOW_S:
            used = self.cpu()
            if used is not None:
                self.cpu_seen = True
                if self.mark is not None and used - self.mark[1] > IDLE_CPU_FRACTION * (now - self.mark[0]):
                    busy = busy or "CPU"
                self.mark = (now, used)
        if busy:
            self.quiet_since = self.last_busy_at = now
            self.last_busy = busy
        return now - self.quiet_since >= self.grace_s

    def quiet_for(self) -> float:
        """Seconds since it was last seen working (since done when never); 0 before done."""
        return 0.0 if self.quiet_since is None else self.clock() - self.quiet_since

    @property
    def worked_after_done_s(self) -> float:
        """How long after it was seen done the run was last seen working (0: never)."""
        if self.done_at is None or self.last_busy_at is None:
            return 0.0
        return self.last_busy_at - self.done_at

    @property
    def observed(self) -> str:
        """What idleness was judged on, for the log line."""
        what = []
        if self.cpu_seen:
            what.append("no CPU time used")
        if self.writes is not None and self.writes.ino is not None:
            what.append("no file written under /out")
        return " and ".join(what) if what else "nothing observable (no cgroup, no inotify): the grace is a clock"

    def close(self) -> None:
        if self.writes is not None:
            self.writes.close()


__all__ = ["IdleWatch", "OutWrites", "IDLE_CPU_FRACTION"]
