"""The suite's own containment of the image under test, and finding out whether a run hit it.

The platform runs an executor with a plain ``docker run`` (contract §1.3): no pids limit, no memory limit, the
engine's default log driver, no ``no-new-privileges``. A fork bomb or an unbounded memory hog on the platform's
shared GPU hosts takes down other users' tasks and the platform's own services, and the platform cannot contain
it. The suite runs every container contained (``--ymir-limits=on``, the default):

* ``--pids-limit`` (:data:`DEFAULT_PIDS`): a training with a data loader of 8-16 workers and their threads uses
  a few hundred pids; 4096 leaves ten times that and still stops a fork bomb well before the host's pid space;
* ``--memory`` = ``--memory-swap`` (:func:`default_memory_bytes`): min(8 GiB, half the host's RAM). The suite's
  synthetic datasets are tiny (tens of small images), and a real executor in CPU mode needs a few GiB (framework,
  weights, a batch); 8 GiB is generous for that and half the RAM leaves the host (and pytest) alive on small
  machines. Equal swap: the limit is on what the image uses, not on how much it can push to swap;
* the ``json-file`` log driver with ``max-size`` (:data:`DEFAULT_LOG_BYTES`) and ``max-file=1``: the engine's
  own copy of the log (under /var/lib/docker) stays bounded; the suite's copy in /out is capped by the runner;
* ``--security-opt=no-new-privileges``: no setuid escalation inside the container;
* ``--cap-drop=ALL`` and back only :data:`FILE_CAPS` (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID, KILL):
  what an image that runs as root plausibly needs for the files it owns (chown/chmod what it wrote, write into
  the platform's 0644 log and other uids' files, drop to another uid with gosu/su, signal its own workers when
  they run as another uid). Docker's other defaults are gone: MKNOD (a device node on the host's disk in the
  bind-mounted /out), NET_RAW and NET_BIND_SERVICE (there is no network anyway), AUDIT_WRITE, SETFCAP, SETPCAP,
  SYS_CHROOT; and nothing of CAP_SYS_* is ever added. For a non-root ``--user`` (every first run) the set changes
  nothing: a process of another uid has no effective capabilities. The same set applies to every retry;
* ``--cpus`` (:func:`default_cpus`): the host's cores minus one, at least 1, so that the suite itself (its log
  pump, monitor sampler and checks) and the host stay responsive while a training spins every thread it has.
  :class:`CgroupProbe` reads the cgroup's ``cpu.stat`` throttling counters: LC-16 (SHOULD) names a run that was
  held back by the limit for most of its life, and how to raise it (``--ymir-limits=cpus=N``);
* ``disk`` (:data:`DEFAULT_DISK_BYTES`, no docker flag: bind mounts have no quota): the runner watches the free
  space of the workspace's filesystem and stops a run that has used more than this much of it (or that leaves
  less than :data:`MIN_FREE_BYTES` free), so an image cannot fill the host's disk through /out.

The suite never runs a container privileged, nor with the host's network, pid or ipc namespace, with or without
limits. ``--ymir-limits=off`` reproduces the platform's unlimited run exactly (none of these flags);
``--ymir-limits=pids=N,memory=8g,log=16m,cpus=3`` overrides single values (``pids=off`` drops one limit).

Whether a run hit a limit: memory from the engine (``State.OOMKilled``, set when the kernel's OOM killer killed
any process of the container) and from the cgroup's ``oom_kill`` counter; pids from the cgroup's
``pids.events`` ("max N": N forks refused). The cgroup disappears when the container exits, so
:class:`CgroupProbe` samples it while the container runs (cgroup v1 and v2, cgroupfs and systemd drivers).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import SettingsError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_PIDS = 4096
MAX_DEFAULT_MEMORY = 8 * GiB
DEFAULT_LOG_BYTES = 16 * MiB
DEFAULT_DISK_BYTES = 10 * GiB  # the most a run may add to the workspace's filesystem (watched, not a docker flag)
DEFAULT_EXIT_GRACE_S = 30.0  # a done run (monitor 100% + result files) that has not exited by then is stopped
MIN_FREE_BYTES = 256 * MiB  # a run is stopped when the workspace's filesystem gets this close to full
MIN_MEMORY = 6 * MiB  # the engine refuses less ("Minimum memory limit allowed is 6MB")
CGROUP_ROOT = Path("/sys/fs/cgroup")


FILE_CAPS: tuple[str, ...] = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL")
NEVER_CAPS = ("MKNOD", "NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_TIME",
              "SYS_BOOT", "SYS_CHROOT", "SYS_RESOURCE", "DAC_READ_SEARCH")  # asserted by the unit tests


def host_cpus() -> int:
    """The cores this process may use (its affinity mask; the cores the engine's host has when they are the
    same machine, which is the only case where the default matters)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_cpus(cores: int | None = None) -> float:
    """The host's cores minus one, at least 1."""
    return float(max(1, (host_cpus() if cores is None else cores) - 1))


def docker_cpus(n: float) -> str:
    """``--cpus`` as the docker CLI takes it: ``3`` or ``1.5``."""
    return f"{n:g}"


def host_ram_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_bytes(ram: int | None = None) -> int:
    """min(8 GiB, half the host's RAM), rounded down to whole MiB (8 GiB when the RAM is unknown)."""
    ram = host_ram_bytes() if ram is None else ram
    if not ram:
        return MAX_DEFAULT_MEMORY
    return max(MIN_MEMORY, min(MAX_DEFAULT_MEMORY, ram // 2) // MiB * MiB)


def docker_size(n: int) -> str:
    """A byte count as the docker CLI writes it: ``8g``, ``256m``, ``64k`` or plain bytes."""
    for unit, size in (("g", GiB), ("m", MiB), ("k", KiB)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$", re.IGNORECASE)


def parse_size(text: str, where: str, what: str) -> int:
    m = _SIZE.match(text.strip())
    if not m:
        raise SettingsError(f"{where}: {what} {text!r} is not a size like 512m, 8g or 1.5g (binary units: "
                            "k, m, g, t; plain numbers are bytes)")
    scale = {"": 1, "b": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


@dataclass(frozen=True)
class Limits:
    """The limits the suite puts on a container; all ``None``/``False`` reproduces the platform's run."""

    pids: int | None = DEFAULT_PIDS
    memory_bytes: int | None = field(default_factory=lambda: default_memory_bytes())  # None: no memory limit
    log_max_bytes: int | None = DEFAULT_LOG_BYTES
    no_new_privileges: bool = True
    disk_bytes: int | None = DEFAULT_DISK_BYTES  # watched by the runner (statvfs of /out's filesystem)
    cpus: float | None = field(default_factory=lambda: default_cpus())  # --cpus; None: no CPU limit
    cap_add: tuple[str, ...] | None = FILE_CAPS  # after --cap-drop=ALL; None: Docker's default set (limits off)

    @property
    def off(self) -> bool:
        return self.pids is None and self.memory_bytes is None and self.log_max_bytes is None \
            and not self.no_new_privileges and self.disk_bytes is None and self.cpus is None and self.cap_add is None

    def describe(self) -> str:
        """As ``--ymir-limits`` takes it: ``off`` or ``pids=4096,memory=8g,log=16m``."""
        if self.off:
            return "off"
        return ",".join([
            f"pids={self.pids if self.pids is not None else 'off'}",
            f"memory={docker_size(self.memory_bytes) if self.memory_bytes is not None else 'off'}",
            f"log={docker_size(self.log_max_bytes) if self.log_max_bytes is not None else 'off'}",
            f"disk={docker_size(self.disk_bytes) if self.disk_bytes is not None else 'off'}",
            f"cpus={docker_cpus(self.cpus) if self.cpus is not None else 'off'}",
        ])

    def to_json(self) -> dict[str, Any]:
        return {"pids": self.pids, "memory": docker_size(self.memory_bytes) if self.memory_bytes else None,
                "log": docker_size(self.log_max_bytes) if self.log_max_bytes else None,
                "disk": docker_size(self.disk_bytes) if self.disk_bytes else None,
                "cpus": self.cpus, "cap_add": None if self.cap_add is None else list(self.cap_add),
                "no_new_privileges": self.no_new_privileges}

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create`` (pinned by unit tests)."""
        import docker.types

        kw: dict[str, Any] = {"privileged": False}  # explicit: never privileged, whatever the limits
        if self.pids is not None:
            kw["pids_limit"] = self.pids
        if self.memory_bytes is not None:
            kw["mem_limit"] = self.memory_bytes
            kw["memswap_limit"] = self.memory_bytes  # no swap beyond the limit
        if self.log_max_bytes is not None:
            kw["log_config"] = docker.types.LogConfig(
                type="json-file", config={"max-size": docker_size(self.log_max_bytes), "max-file": "1"})
        if self.no_new_privileges:
            kw["security_opt"] = ["no-new-privileges"]
        if self.cap_add is not None:
            kw["cap_drop"] = ["ALL"]
            kw["cap_add"] = list(self.cap_add)
        if self.cpus is not None:
            kw["nano_cpus"] = int(round(self.cpus * 1e9))
        return kw

    def argv(self) -> list[str]:
        """The same as ``docker run`` flags."""
        out: list[str] = []
        if self.pids is not None:
            out.append(f"--pids-limit={self.pids}")
        if self.memory_bytes is not None:
            out += [f"--memory={docker_size(self.memory_bytes)}", f"--memory-swap={docker_size(self.memory_bytes)}"]
        if self.log_max_bytes is not None:
            out += ["--log-driver=json-file", f"--log-opt=max-size={docker_size(self.log_max_bytes)}",
                    "--log-opt=max-file=1"]
        if self.no_new_privileges:
            out.append("--security-opt=no-new-privileges")
        if self.cap_add is not None:
            out += ["--cap-drop=ALL", *(f"--cap-add={c}" for c in self.cap_add)]
        if self.cpus is not None:
            out.append(f"--cpus={docker_cpus(self.cpus)}")
        return out


DEFAULT_LIMITS = Limits()
NO_LIMITS = Limits(pids=None, memory_bytes=None, log_max_bytes=None, no_new_privileges=False, disk_bytes=None,
                   cpus=None, cap_add=None)


def parse_limits(value: str | None, where: str, base: Limits = DEFAULT_LIMITS) -> Limits:
    """``on`` (default) | ``off`` | ``key=value,...`` with keys pids, memory, log (each also ``off``)."""
    v = (value or "on").strip().lower()
    if v in ("on", "default", "yes", "true", "1"):
        return base
    if v in ("off", "none", "no", "false", "0"):
        return NO_LIMITS
    changes: dict[str, Any] = {}
    for item in (p.strip() for p in v.split(",")):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not raw:
            raise SettingsError(f"{where}: {item!r} is not key=value; use on, off, or e.g. "
                                "pids=4096,memory=8g,log=16m (pids=off drops one limit)")
        disabled = raw in ("off", "none", "0")
        if key == "pids":
            if disabled:
                changes["pids"] = None
            elif not raw.isdigit() or int(raw) < 16:
                raise SettingsError(f"{where}: pids={raw!r} must be a whole number of at least 16 (or off); the "
                                    f"default is {DEFAULT_PIDS}")
            else:
                changes["pids"] = int(raw)
        elif key in ("memory", "mem"):
            n = None if disabled else parse_size(raw, where, "memory")
            if n is not None and n < MIN_MEMORY:
                raise SettingsError(f"{where}: memory={raw!r} is below the engine's minimum of 6m")
            changes["memory_bytes"] = n
        elif key == "log":
            n = None if disabled else parse_size(raw, where, "log")
            if n is not None and n < 64 * KiB:
                raise SettingsError(f"{where}: log={raw!r} is below 64k; the engine's log file needs room for "
                                    "at least a few lines")
            changes["log_max_bytes"] = n
        elif key == "cpus":
            changes["cpus"] = None if disabled else parse_cpus(raw, where)
        elif key == "disk":
            n = None if disabled else parse_size(raw, where, "disk")
            if n is not None and n < 16 * MiB:
                raise SettingsError(f"{where}: disk={raw!r} is below 16m; a training writes its model there")
            changes["disk_bytes"] = n
        else:
            raise SettingsError(f"{where}: unknown limit {key!r}; the keys are pids, memory, log, disk and cpus "
                                "(e.g. pids=4096,memory=8g,log=16m,disk=10g,cpus=3), or use on / off")
    return replace(base, **changes)


def parse_cpus(raw: str, where: str, cores: int | None = None) -> float:
    """``cpus=N``: a number of cores (fractions allowed, as ``docker run --cpus``), 0.01 up to the host's cores."""
    cores = host_cpus() if cores is None else cores
    try:
        n = float(raw)
    except ValueError:
        n = -1.0
    if not 0.01 <= n <= cores or n != n:
        raise SettingsError(f"{where}: cpus={raw!r} must be a number of cores from 0.01 to this host's {cores} (or "
                            f"off); the default is the host's cores minus one ({default_cpus(cores):g})")
    return round(n, 2)


# --------------------------------------------------------------------------------------------------------
# Did the run hit a limit? The container's cgroup, sampled while it runs
# --------------------------------------------------------------------------------------------------------


def _read_small(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(4096).decode("ascii", "replace")
    except OSError:
        return None


def _counter(text: str | None, key: str) -> int | None:
    """``N`` of the line ``key N`` in a cgroup ``*.events`` / ``oom_control`` file."""
    if text is None:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    t = text.strip()
    return int(t) if t.isdigit() else None


class CgroupProbe:
    """Samples the pids and memory cgroups of one running container (best effort: absent files are skipped).

    The cgroup is found from ``/proc/<init pid>/cgroup`` when the suite shares the engine's pid namespace,
    else at the engine's usual places (``docker/<id>`` for cgroupfs, ``system.slice/docker-<id>.scope`` for
    systemd, on cgroup v1 and v2).
    """

    def __init__(self, container_id: str, pid: int | None = None, root: Path = CGROUP_ROOT) -> None:
        self.container_id = container_id
        self.pid = pid
        self.root = root
        self.pids_dir: Path | None = None
        self.memory_dir: Path | None = None
        self.pids_max_events = 0  # forks refused at the pids limit
        self.pids_peak: int | None = None
        self.oom_kills = 0
        self.memory_peak: int | None = None
        self.cpu_dir: Path | None = None  # cpu.stat: nr_periods / nr_throttled (v1 and v2), usage_usec (v2)
        self.cpuacct_dir: Path | None = None  # cgroup v1: cpuacct.usage (nanoseconds)
        self.cpu_usage_s: float | None = None  # CPU time the container's processes used so far
        self.cpu_periods = 0  # CFS periods in which it had something to run (under a --cpus quota)
        self.cpu_throttled = 0  # ... and in which it was throttled at the quota
        self.samples = 0

    def _candidates(self, controller: str) -> list[Path]:
        cid = self.container_id
        found: list[Path] = []
        if self.pid:
            text = _read_small(Path(f"/proc/{self.pid}/cgroup")) or ""
            for line in text.splitlines():
                _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
                rel = path.lstrip("/")
                if controllers == "" and rel:  # cgroup v2 unified hierarchy
                    found.append(self.root / rel)
                elif controller in controllers.split(","):
                    found.append(self.root / controller / rel)
        scope = f"docker-{cid}.scope"
        found += [self.root / controller / "docker" / cid, self.root / controller / "system.slice" / scope,
                  self.root / "docker" / cid, self.root / "system.slice" / scope]
        return found

    def _locate(self) -> None:
        if self.pids_dir is None:
            self.pids_dir = next((p for p in self._candidates("pids") if (p / "pids.current").exists()), None)
        if self.memory_dir is None:
            self.memory_dir = next((p for p in self._candidates("memory")
                                    if (p / "memory.oom_control").exists() or (p / "memory.events").exists()), None)
        if self.cpu_dir is None:
            self.cpu_dir = next((p for p in self._candidates("cpu") if (p / "cpu.stat").exists()), None)
        if self.cpuacct_dir is None and self.cpu_dir is not None and not (self.cpu_dir / "cgroup.controllers").exists():
            self.cpuacct_dir = next((p for p in self._candidates("cpuacct") if (p / "cpuacct.usage").exists()), None)

    @property
    def located(self) -> bool:
        return self.pids_dir is not None or self.memory_dir is not None

    def sample(self) -> None:
        self._locate()
        self.samples += 1
        if self.pids_dir is not None:
            events = _counter(_read_small(self.pids_dir / "pids.events"), "max")
            if events is not None:
                self.pids_max_events = max(self.pids_max_events, events)
            for name in ("pids.current", "pids.peak"):
                n = _int(_read_small(self.pids_dir / name))
                if n is not None:
                    self.pids_peak = max(self.pids_peak or 0, n)
        if self.memory_dir is not None:
            for name in ("memory.oom_control", "memory.events"):
                n = _counter(_read_small(self.memory_dir / name), "oom_kill")
                if n is not None:
                    self.oom_kills = max(self.oom_kills, n)
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                n = _int(_read_small(self.memory_dir / name))
                if n is not None:
                    self.memory_peak = max(self.memory_peak or 0, n)
        self.sample_cpu()

    def sample_cpu(self) -> float | None:
        """Read the CPU counters (cheap: one or two small files); returns the CPU seconds used so far."""
        self._locate()
        if self.cpu_dir is not None:
            text = _read_small(self.cpu_dir / "cpu.stat")
            for key in ("nr_periods", "nr_throttled"):
                n = _counter(text, key)
                if n is not None:
                    attr = "cpu_periods" if key == "nr_periods" else "cpu_throttled"
                    setattr(self, attr, max(getattr(self, attr), n))
            usec = _counter(text, "usage_usec")
            if usec is not None:
                self.cpu_usage_s = max(self.cpu_usage_s or 0.0, usec / 1e6)
        if self.cpuacct_dir is not None:
            ns = _int(_read_small(self.cpuacct_dir / "cpuacct.usage"))
            if ns is not None:
                self.cpu_usage_s = max(self.cpu_usage_s or 0.0, ns / 1e9)
        return self.cpu_usage_s


__all__ = ["CgroupProbe", "DEFAULT_LIMITS", "FILE_CAPS", "Limits", "NO_LIMITS", "default_cpus", "default_memory_bytes",
           "docker_size", "parse_cpus", "parse_limits"]
