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
* ``disk`` (:data:`DEFAULT_DISK_BYTES`, no docker flag: bind mounts have no quota): the runner watches the free
  space of the workspace's filesystem and stops a run that has used more than this much of it (or that leaves
  less than :data:`MIN_FREE_BYTES` free), so an image cannot fill the host's disk through /out.

The suite never runs a container privileged, nor with the host's network, pid or ipc namespace, with or without
limits. ``--ymir-limits=off`` reproduces the platform's unlimited run exactly (none of these flags);
``--ymir-limits=pids=N,memory=8g,log=16m`` overrides single values (``pids=off`` drops one limit).

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

    @property
    def off(self) -> bool:
        return self.pids is None and self.memory_bytes is None and self.log_max_bytes is None \
            and not self.no_new_privileges and self.disk_bytes is None

    def describe(self) -> str:
        """As ``--ymir-limits`` takes it: ``off`` or ``pids=4096,memory=8g,log=16m``."""
        if self.off:
            return "off"
        return ",".join([
            f"pids={self.pids if self.pids is not None else 'off'}",
            f"memory={docker_size(self.memory_bytes) if self.memory_bytes is not None else 'off'}",
            f"log={docker_size(self.log_max_bytes) if self.log_max_bytes is not None else 'off'}",
            f"disk={docker_size(self.disk_bytes) if self.disk_bytes is not None else 'off'}",
        ])

    def to_json(self) -> dict[str, Any]:
        return {"pids": self.pids, "memory": docker_size(self.memory_bytes) if self.memory_bytes else None,
                "log": docker_size(self.log_max_bytes) if self.log_max_bytes else None,
                "disk": docker_size(self.disk_bytes) if self.disk_bytes else None,
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
        return out


DEFAULT_LIMITS = Limits()
NO_LIMITS = Limits(pids=None, memory_bytes=None, log_max_bytes=None, no_new_privileges=False, disk_bytes=None)


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
        elif key == "disk":
            n = None if disabled else parse_size(raw, where, "disk")
            if n is not None and n < 16 * MiB:
                raise SettingsError(f"{where}: disk={raw!r} is below 16m; a training writes its model there")
            changes["disk_bytes"] = n
        else:
            raise SettingsError(f"{where}: unknown limit {key!r}; the keys are pids, memory, log and disk (e.g. "
                                "pids=4096,memory=8g,log=16m,disk=10g), or use on / off")
    return replace(base, **changes)


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


__all__ = ["CgroupProbe", "DEFAULT_LIMITS", "Limits", "NO_LIMITS", "default_memory_bytes", "docker_size",
           "parse_limits"]
