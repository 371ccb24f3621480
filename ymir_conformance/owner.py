"""Who owns a container or a workspace, and whether that owner is gone (so its leftovers may be reaped).

Every container ymir-conformance starts carries its owner's identity as labels (``runner.run_labels``), and
every session workspace holds the same identity in ``.ymir-owner.json``: the owner's pid, the host's boot id
(``/proc/sys/kernel/random/boot_id``), the pid namespace, the host name and the creation time. A later session
on the same engine reaps what an owner left only when that owner is certainly gone:

* the same host (host name) rebooted since (boot id differs);
* or, same boot and same pid namespace: the pid no longer runs (or is a zombie), or the pid was reused: the
  process now holding it started after the owner recorded its creation time (or, if the start time cannot be
  read, it is not a python/pytest process).

Anything this process cannot judge (another host sharing the engine, another pid namespace such as a CI job in
a container with the Docker socket mounted, leftovers from versions without these labels) is reaped only when
older than :data:`MAX_AGE_S`. Sessions run with ``--ymir-keep`` are never reaped: the user asked to keep them.
The decision (:func:`gone`) takes a :class:`Probe`, so it is unit-tested without Docker and without real pids.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

MAX_AGE_S = 24 * 3600  # leftovers whose owner cannot be judged are reaped after this long
START_SLACK_S = 2.0  # process start times are known to a clock tick and btime to the second
OWNER_FILE = ".ymir-owner.json"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def boot_id() -> str:
    return (_read("/proc/sys/kernel/random/boot_id") or "").strip()


def pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    raw = _read(f"/proc/{pid}/stat")
    if raw is None or ")" not in raw:
        return None
    return raw.rsplit(")", 1)[1].split()  # fields from 3 (state) on: the command name may hold spaces and ')'


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it has exited and waits for its parent to collect it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    fields = _stat_fields(pid)
    if fields is not None and fields[0] in ("Z", "X"):
        return False
    return True


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (from /proc), or None when unknown."""
    fields = _stat_fields(pid)
    stat = _read("/proc/stat")
    if fields is None or stat is None or len(fields) < 20:
        return None
    btime = next((line.split()[1] for line in stat.splitlines() if line.startswith("btime ")), None)
    if btime is None:
        return None
    try:
        return int(btime) + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime in clock ticks
    except (ValueError, OSError):
        return None


def process_cmdline(pid: int) -> str | None:
    raw = _read(f"/proc/{pid}/cmdline")
    return None if raw is None else raw.replace("\0", " ").strip()


@dataclass(frozen=True)
class Probe:
    """What the owner check asks of this host; the defaults ask the real one (tests pass fakes)."""

    boot_id: str = field(default_factory=boot_id)
    pid_ns: str = field(default_factory=pid_namespace)
    host: str = field(default_factory=socket.gethostname)
    now: float = field(default_factory=time.time)
    alive: Callable[[int], bool] = pid_alive
    started: Callable[[int], float | None] = process_start_time
    cmdline: Callable[[int], str | None] = process_cmdline


@dataclass(frozen=True)
class Owner:
    """The process that created a container or a workspace."""

    session: str
    pid: int
    boot_id: str
    created: float  # seconds since the epoch
    pid_ns: str = ""
    host: str = ""
    keep: bool = False

    @classmethod
    def current(cls, session: str, keep: bool = False) -> Owner:
        return cls(session=session, pid=os.getpid(), boot_id=boot_id(), created=time.time(),
                   pid_ns=pid_namespace(), host=socket.gethostname(), keep=keep)

    def labels(self, prefix: str) -> dict[str, str]:
        out = {f"{prefix}.pid": str(self.pid), f"{prefix}.boot-id": self.boot_id,
               f"{prefix}.created": f"{self.created:.3f}", f"{prefix}.pid-ns": self.pid_ns, f"{prefix}.host": self.host}
        if self.keep:
            out[f"{prefix}.keep"] = "1"
        return out

    @classmethod
    def from_labels(cls, labels: Mapping[str, str], prefix: str, session_label: str) -> Owner | None:
        """The owner recorded in container labels, or None for containers made before these labels existed."""
        try:
            return cls(session=labels.get(session_label, ""), pid=int(labels[f"{prefix}.pid"]),
                       boot_id=labels[f"{prefix}.boot-id"], created=float(labels[f"{prefix}.created"]),
                       pid_ns=labels.get(f"{prefix}.pid-ns", ""), host=labels.get(f"{prefix}.host", ""),
                       keep=labels.get(f"{prefix}.keep") == "1")
        except (KeyError, ValueError):
            return None

    def write(self, directory: Path) -> None:
        """Record this owner in ``directory`` (atomically: a concurrent reaper never reads half a file)."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f"{OWNER_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, directory / OWNER_FILE)

    @classmethod
    def read(cls, directory: Path) -> Owner | None:
        raw = _read(str(directory / OWNER_FILE))
        if raw is None:
            return None
        try:
            d: dict[str, Any] = json.loads(raw)
            return cls(session=str(d.get("session", "")), pid=int(d["pid"]), boot_id=str(d["boot_id"]),
                       created=float(d["created"]), pid_ns=str(d.get("pid_ns", "")), host=str(d.get("host", "")),
                       keep=bool(d.get("keep", False)))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def gone(owner: Owner | None, created: float | None, probe: Probe) -> str | None:
    """Why the owner of a leftover is certainly gone, or None when it may still run (leave the leftover alone).

    ``created`` is when the leftover itself was made (the engine's container creation time, a directory's
    mtime): it decides only for leftovers whose owner cannot be judged from this process.
    """
    old = created is not None and probe.now - created > MAX_AGE_S
    age = "" if created is None else f"{(probe.now - created) / 3600:.0f} h old"
    if owner is None:
        return f"no owner recorded, {age}" if old else None
    if owner.keep:
        return None
    if owner.host and owner.host != probe.host:
        return f"made on host {owner.host} (not this one), {age}" if old else None
    if owner.boot_id and probe.boot_id and owner.boot_id != probe.boot_id:
        return "the host rebooted since"
    if owner.pid_ns and probe.pid_ns and owner.pid_ns != probe.pid_ns:
        return f"made in another pid namespace, {age}" if old else None
    if not probe.alive(owner.pid):
        return "not running"
    started = probe.started(owner.pid)
    if started is not None:
        return "pid reused by a newer process" if started > owner.created + START_SLACK_S else None
    cmd = probe.cmdline(owner.pid)
    if cmd is not None and "python" not in cmd and "pytest" not in cmd:
        return f"pid reused by {cmd.split(' ', 1)[0]!r}"
    return None


def engine_time(stamp: str) -> float | None:
    """Docker's ``Created`` (``2024-05-01T12:34:56.123456789Z``) in seconds since the epoch."""
    try:
        base, _, frac = stamp.rstrip("Z").partition(".")
        tz = ""
        for sign in ("+", "-"):
            if sign in frac:
                frac, _, off = frac.partition(sign)
                tz = sign + off
        t = datetime.fromisoformat(base + (tz or "+00:00")).timestamp()
        return t + (float("0." + frac[:6]) if frac.isdigit() else 0.0)
    except ValueError:
        return None


__all__ = ["Owner", "Probe", "gone", "engine_time", "pid_alive", "process_start_time", "OWNER_FILE", "MAX_AGE_S"]
