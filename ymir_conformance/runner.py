"""Reaching the image: run a container exactly as the platform's ``executant.py`` does (contract §1.3-1.9).

``docker run --rm -v <in>:/in:ro -v <out>:/out --user uid:gid [--gpus "device=<ids>"] --shm-size=<shm>
--name <name> <image>``: no command, no entrypoint override, no environment. We use the Docker SDK and add
what a test harness needs: labels (so strays can be reaped), ``--network none`` unless allowed, a wall-clock
timeout that kills the container, stdout+stderr appended to ``/out/ymir-executor-out.log`` as it is produced
(capped), a live monitor.txt sampler, and removal of the container in every case.

Containment (limits.py, ``--ymir-limits``): every task and inspection container, first run and retry alike, gets
a pids limit, a memory limit, a CPU limit, a bounded json-file log, no-new-privileges and ``--cap-drop=ALL`` with
only the file-ownership capabilities added back (``ContainerSpec.argv`` shows them, so the printed line
reproduces the run; ``--ymir-limits=off`` drops them all). While a task runs, :func:`run_container` samples the
container's cgroup (pids.events, OOM kills, CPU time and throttling) and watches for a run that is done
(monitor.txt at 100% or state 3 and its result files written) but never exits: once it has been done and idle (no
CPU time, no write under /out: idle.py) for ``exit_grace_s`` it is stopped and marked ``never_exited``.
"""
from __future__ import annotations

import os
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions
from docker.utils.socket import STDERR, STDOUT, frames_iter

from . import guard
from .errors import DockerUnavailable, ImageNotFound, UnsafeOutput
from .idle import IdleWatch
from .limits import DEFAULT_EXIT_GRACE_S, DEFAULT_LIMITS, MIN_FREE_BYTES, CgroupProbe, Limits
from .model import ProgressSample, TaskShape
from .owner import OWNER_FILE, Owner, Probe, engine_time, gone
from .progress import MonitorSampler, parse_record
from .rmtree import remove_tree

LABEL_PREFIX = "org.ymir-conformance"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
LABEL_RUN = f"{LABEL_PREFIX}.run"
LABEL_TAG = f"{LABEL_PREFIX}.tag"  # from $YMIR_CONFORMANCE_TAG: lets a caller (our own tests) find its containers
# the owner (owner.Owner.labels): who made the container, so a later session can tell whether it is gone
LABEL_PID = f"{LABEL_PREFIX}.pid"
LABEL_BOOT_ID = f"{LABEL_PREFIX}.boot-id"
LABEL_CREATED = f"{LABEL_PREFIX}.created"
LABEL_PID_NS = f"{LABEL_PREFIX}.pid-ns"
LABEL_HOST = f"{LABEL_PREFIX}.host"
LABEL_KEEP = f"{LABEL_PREFIX}.keep"  # --ymir-keep: never reaped by a later session
MODEL_CACHE_DIR = "model-cache"  # under the workdir root, shared by sessions: never reaped

_KEEP: dict[str, bool] = {}  # session id -> --ymir-keep, for the sessions this process runs (claim_session)
_CURRENT: list[str] = []  # the session ids this process claimed, latest last (labels inspection containers)


def claim_session(session_id: str, keep: bool = False) -> Owner:
    """Register a session of this process; its containers and workspace carry the returned owner."""
    _KEEP[session_id] = keep
    _CURRENT.append(session_id)
    return Owner.current(session_id, keep=keep)


def run_labels(session_id: str, run: str) -> dict[str, str]:
    """Labels of every container we create: session, run, the owner (pid, boot id, creation time, ...), tag."""
    labels = {LABEL_SESSION: session_id, LABEL_RUN: run}
    labels.update(Owner.current(session_id, keep=_KEEP.get(session_id, False)).labels(LABEL_PREFIX))
    if os.environ.get("YMIR_CONFORMANCE_TAG"):
        labels[LABEL_TAG] = os.environ["YMIR_CONFORMANCE_TAG"]
    return labels


def inspect_labels() -> dict[str, str]:
    """Labels of the short-lived inspection containers (cat, get_archive): those of the latest session."""
    return run_labels(_CURRENT[-1] if _CURRENT else f"pid-{os.getpid()}", "inspect")
LIMIT_GRACE_S = 5.0  # a run still at its pids limit this long after first hitting it is stopped
FLOOD_STOP_BYTES = 256 << 20  # output beyond the log cap after which a run is stopped (an endless stdout flood)
LOG_CAP_BYTES = 64 * 1024 * 1024  # beyond this the log is drained but no longer written
SHM_PER_GPU_GB = 16


def shm_size_for(config: dict[str, Any], gpu_ids: tuple[str, ...]) -> str:
    """The platform's rule (``executant._get_shm_size``): config ``shm_size`` verbatim, else 16G x #GPUs (16G min)."""
    if config.get("shm_size"):
        return str(config["shm_size"])
    return f"{SHM_PER_GPU_GB * max(1, len(gpu_ids))}G"


def container_gpu_id(gpu_ids: tuple[str, ...]) -> str:
    """What config.yaml ``gpu_id`` says inside the container: ``'0,1,...'`` (n GPUs) or ``''`` (CPU mode)."""
    return ",".join(str(i) for i in range(len(gpu_ids)))


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that decides how one task container is started."""

    image: str
    in_dir: Path
    out_dir: Path
    user: str | None  # "uid:gid"; None only to mimic --run-as-root (never used by the platform)
    gpu_ids: tuple[str, ...] = ()  # host GPU ids, e.g. ("2", "3")
    shm_size: str = "16G"
    network: bool = False
    network_name: str = ""  # with network: the Docker network to join ('' = the default bridge)
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    extra_mounts: tuple[tuple[Path, str, str], ...] = ()  # (host path, container path, mode)
    limits: Limits = DEFAULT_LIMITS  # the suite's containment (limits.py); NO_LIMITS = the platform's exact run
    transfer: str = "bind"  # "archive": /in and /out travel in volumes over the API (transfer.py)

    def archive_mounts(self) -> list[Any]:
        """--ymir-transfer=archive: the named volumes standing for /in, /out and the extra mounts."""
        from .transfer import volume_mounts

        return volume_mounts(self.name, self.in_dir, self.out_dir, self.extra_mounts)

    def volumes(self) -> dict[str, dict[str, str]]:
        vols = {str(self.in_dir): {"bind": "/in", "mode": "ro"}, str(self.out_dir): {"bind": "/out", "mode": "rw"}}
        for host, cpath, mode in self.extra_mounts:
            vols[str(host)] = {"bind": cpath, "mode": mode}
        return vols

    def device_requests(self) -> list[docker.types.DeviceRequest]:
        if not self.gpu_ids:
            return []
        return [docker.types.DeviceRequest(device_ids=list(self.gpu_ids), capabilities=[["gpu"]])]

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.create`` (pinned by unit tests)."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": None,  # LC-02: the image's own CMD/ENTRYPOINT must start the task
            "name": self.name,
            "labels": dict(self.labels),
            "shm_size": self.shm_size,
            "detach": True,
        }
        if self.transfer == "archive":
            from .transfer import docker_mounts

            kwargs["mounts"] = docker_mounts(self.archive_mounts())
        else:
            kwargs["volumes"] = self.volumes()
        if self.user is not None:
            kwargs["user"] = self.user
        if not self.network:
            kwargs["network_mode"] = "none"
        elif self.network_name:
            kwargs["network_mode"] = self.network_name  # e.g. the diagnosis' internal network (no route anywhere)
        requests_ = self.device_requests()
        if requests_:
            kwargs["device_requests"] = requests_
        kwargs.update(self.limits.create_kwargs())  # never privileged, never the host's network/pid/ipc
        return kwargs

    def argv(self) -> list[str]:
        """The equivalent ``docker run`` command line, for reports and for reproducing a run by hand."""
        argv = ["docker", "run", "--rm"]
        if self.transfer == "archive":  # volumes filled with put_archive (transfer.py)
            argv += [f"--mount=type=volume,src={m.volume},dst={m.target}" + (",readonly" if m.read_only else "")
                     for m in self.archive_mounts()]
        else:
            argv += [f"-v{self.in_dir}:/in:ro", f"-v{self.out_dir}:/out"]
            for host, cpath, mode in self.extra_mounts:
                argv.append(f"-v{host}:{cpath}:{mode}")
        if self.user is not None:
            argv += ["--user", self.user]
        if self.gpu_ids:
            argv += ["--gpus", f'"device={",".join(self.gpu_ids)}"']
        argv.append(f"--shm-size={self.shm_size}")
        if not self.network:
            argv += ["--network", "none"]
        elif self.network_name:
            argv += ["--network", self.network_name]
        argv += self.limits.argv()
        argv += ["--name", self.name, self.image]
        return argv


@dataclass
class ContainerResult:
    exit_code: int | None  # None: never started, or killed at the timeout
    timed_out: bool
    duration_s: float
    progress: list[ProgressSample]
    start_error: str = ""  # the engine refused to create/start the container (e.g. no CMD, bad shm size)
    oom_killed: bool = False  # State.OOMKilled, or an oom_kill counted in the memory cgroup
    hit_pids_limit: bool = False  # pids.events counted a refused fork
    pids_peak: int | None = None
    memory_peak_bytes: int | None = None
    log_bytes: int = 0  # stdout+stderr bytes seen
    log_bytes_dropped: int = 0  # beyond LOG_CAP_BYTES: counted, not written
    never_exited: bool = False  # done (monitor 100% + result files) but still running after the exit grace
    flood_stopped: bool = False  # stopped by the suite after FLOOD_STOP_BYTES of output beyond the log cap
    disk_stopped: bool = False  # stopped: it used more of the workspace's filesystem than the disk limit
    disk_used_bytes: int = 0  # the most of the workspace's filesystem the run was seen to use
    done_s: float | None = None  # seconds after start when it was seen done
    transfer: dict[str, Any] = field(default_factory=dict)  # archive transfer: timings, sizes, refusals, digests
    cpu_usage_s: float | None = None  # CPU time the container used (its cgroup), when readable
    cpu_periods: int = 0  # CFS periods with work under the --cpus quota (cgroup cpu.stat nr_periods)
    cpu_throttled: int = 0  # ... in which it was throttled at the quota (nr_throttled): LC-16
    worked_after_done_s: float = 0.0  # how long after it looked done it was last seen working (idle.py)


def client(timeout: int = 120, base_url: str | None = None) -> docker.DockerClient:
    """A Docker client (``base_url``, else DOCKER_HOST / the default socket), or a :class:`DockerUnavailable`
    error that says how to get an engine."""
    try:
        c = (docker.DockerClient(base_url=base_url, timeout=timeout, use_ssh_client=base_url.startswith("ssh://"))
             if base_url else docker.from_env(timeout=timeout))
        c.ping()
        return c
    except Exception as exc:
        raise DockerUnavailable(
            f"no Docker engine answers{' at ' + base_url if base_url else ''} ({exc}). Run scripts/bootstrap (it installs Debian's docker.io and "
            "starts dockerd), or point DOCKER_HOST at a running engine."
        ) from None


def ensure_image(cl: docker.DockerClient, image: str) -> Any:
    try:
        return cl.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageNotFound(
            f"image {image!r} is not in the local engine, and ymir-conformance never pulls. Build or load it "
            f"first (docker build -t {image} . / docker load -i image.tar), then run again."
        ) from None


class _Attached:
    """The container's output streams, attached before it starts (``docker run`` does the same): a raw socket
    of frames (stream id, bytes) that :meth:`close` always closes (no socket is left to the garbage collector)."""

    def __init__(self, container: Any, stdout: bool = True, stderr: bool = True) -> None:
        self.sock: Any = container.client.api.attach_socket(
            container.id, params={"stdout": int(stdout), "stderr": int(stderr), "stream": 1, "logs": 0})

    def frames(self) -> Iterator[tuple[int, bytes]]:
        return frames_iter(self.sock, tty=False)  # type: ignore[no-any-return,no-untyped-call]

    def close(self) -> None:
        """Shut the connection down (not only close our end): an engine blocked writing into it unblocks, so a
        container whose output nobody reads any more can still be killed and reaped."""
        raw = getattr(self.sock, "_sock", None)
        response = getattr(self.sock, "_response", None)
        for sock in (raw, self.sock):
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
        for thing in (self.sock, raw, response):
            try:
                if thing is not None:
                    thing.close()
            except Exception:
                pass


class _LogPump:
    """The container's stdout+stderr, appended to the executor log up to ``cap`` bytes and counted beyond.

    Attached *before* the container starts, straight to its output streams: every byte arrives, in order, and a
    flood is slowed to our pace (back-pressure). Following the engine's log file instead loses whatever a
    rotation of the bounded json-file log cut before it was read (measured: 35 of 200 MB seen).
    """

    def __init__(self, container: Any, log_fd: int, cap: int = LOG_CAP_BYTES) -> None:
        self.attached = _Attached(container)
        self.log_fd = log_fd
        self.cap = cap
        self.written = 0
        self.seen = 0
        self.dropped = 0
        self.done = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="ymir-log-pump", daemon=True).start()

    def _run(self) -> None:
        try:
            for _, chunk in self.attached.frames():
                self.seen += len(chunk)
                if self.written < self.cap:
                    piece = chunk[: self.cap - self.written]
                    os.write(self.log_fd, piece)
                    self.written += len(piece)
                    self.dropped += len(chunk) - len(piece)
                    if self.written >= self.cap:
                        os.write(self.log_fd, f"\n[ymir-conformance] log truncated here: over "
                                              f"{guard.human(self.cap)} of output\n".encode())
                else:
                    self.dropped += len(chunk)  # drained and counted, never held: LC-13 reports the volume
        except Exception:  # the container went away; whatever was written stays
            pass
        finally:
            self.attached.close()
            self.done.set()


class _Waiter:
    """``container.wait()`` in a thread, so that the runner can watch the run while it waits."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.status: dict[str, Any] | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._run, name="ymir-wait", daemon=True).start()

    def _run(self) -> None:
        try:
            self.status = self.container.wait()  # no read timeout: the runner kills at its own deadline
        except Exception:  # the engine went away: no exit code
            self.status = None
        finally:
            self.finished.set()

    @property
    def exit_code(self) -> int | None:
        return int(self.status.get("StatusCode", -1)) if self.status is not None else None


def result_files(shape: TaskShape) -> tuple[str, ...]:
    """The result files under /out that a run of ``shape`` writes last (the platform reads them after exit)."""
    return shape.result_files


def looks_done(monitor_raw: str | None, out_dir: Path, done_files: tuple[str, ...]) -> bool:
    """Whether a run has finished its work: monitor.txt line 1 at 100% (not ERROR) or state 3 (DONE), and every
    result file a regular file (``lstat`` only, no link followed, nothing read)."""
    if not done_files or not monitor_raw:
        return False
    record = parse_record(monitor_raw)
    if record is None:
        return False
    _, percent, state = record
    if not (state == 3 or (percent >= 1.0 and state != 4)):
        return False
    for rel in done_files:
        try:
            st = guard.lstat_beneath(out_dir, rel)
        except (OSError, UnsafeOutput):
            return False
        if st is None or not stat.S_ISREG(st.st_mode):
            return False
    return True


def _looks_done_remote(monitor_raw: str | None, transfer: Any, done_files: tuple[str, ...]) -> bool:
    """:func:`looks_done` for archive transfer: the result files are looked up over the API."""
    if not done_files or not monitor_raw:
        return False
    record = parse_record(monitor_raw)
    if record is None or not (record[2] == 3 or (record[1] >= 1.0 and record[2] != 4)):
        return False
    return all(transfer.is_regular(rel) for rel in done_files)


def _kill_quietly(container: Any) -> None:
    try:
        container.kill()
    except (docker.errors.APIError, requests.exceptions.RequestException):
        pass


def _init_pid(container: Any) -> int | None:
    try:
        container.reload()
        return int((container.attrs.get("State") or {}).get("Pid") or 0) or None
    except (docker.errors.APIError, requests.exceptions.RequestException, ValueError):
        return None


def _oom_killed(container: Any) -> bool:
    try:
        container.reload()
        return bool((container.attrs.get("State") or {}).get("OOMKilled"))
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return False


def run_container(cl: docker.DockerClient, spec: ContainerSpec, timeout_s: float, keep: bool = False,
                  sample_interval_s: float = 0.01, done_files: tuple[str, ...] = (),
                  exit_grace_s: float = DEFAULT_EXIT_GRACE_S, poll_s: float = 0.1) -> ContainerResult:
    """Run one task container (see :func:`_run_container`); with ``spec.transfer == "archive"`` /in is shipped
    into volumes first and /out fetched back through the guarded extractor afterwards (transfer.py)."""
    if spec.transfer != "archive":
        return _run_container(cl, spec, timeout_s, keep, sample_interval_s, done_files, exit_grace_s, poll_s)
    from .transfer import ArchiveTransfer, TransferError

    t = ArchiveTransfer(cl, spec.image, spec.name, spec.archive_mounts(), spec.labels)
    try:
        try:
            t.ship()
        except TransferError as exc:
            with open(spec.out_dir / "ymir-executor-out.log", "a") as log:
                log.write(f"[ymir-conformance] {exc}\n")
            return ContainerResult(None, False, 0.0, [], start_error=str(exc))
        result = _run_container(cl, spec, timeout_s, keep, sample_interval_s, done_files, exit_grace_s, poll_s,
                                transfer=t)
        t.fetch(spec.out_dir / "ymir-executor-out.log")
        f = t.fetched
        result.transfer = {
            "mode": "archive", **t.timings, "shipped_bytes": t.shipped_bytes,
            "fetched": None if f is None else {"files": f.files, "dirs": f.dirs, "links": f.links, "bytes": f.bytes},
            "refused": t.notes[:50], "asset_cache_digests": list(t.asset_digests) if t.asset_digests else None,
            "volumes": [m.volume for m in t.mounts],
        }
        return result
    finally:
        t.cleanup()


def _run_container(cl: docker.DockerClient, spec: ContainerSpec, timeout_s: float, keep: bool = False,
                   sample_interval_s: float = 0.01, done_files: tuple[str, ...] = (),
                   exit_grace_s: float = DEFAULT_EXIT_GRACE_S, poll_s: float = 0.1,
                   transfer: Any = None) -> ContainerResult:
    """Run one task container to completion (or the timeout), always removing it unless ``keep``.

    ``done_files`` (see :func:`result_files`): once monitor.txt says 100% / DONE and these files exist, the
    container has ``exit_grace_s`` seconds to exit before it is killed and reported ``never_exited``. Every
    ``poll_s`` the container's cgroup is sampled for pids-limit and OOM events (the cgroup is gone after exit).
    """
    log_path = spec.out_dir / "ymir-executor-out.log"
    # Opened before start and written through the fd: an image cannot redirect our writes with a symlink.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    sampler: Any = MonitorSampler(spec.out_dir / "monitor.txt", interval_s=sample_interval_s)
    if transfer is not None:  # monitor.txt is in a volume on the engine: sampled over the API
        from .transfer import RemoteMonitorSampler

        sampler = RemoteMonitorSampler(transfer)
    container: Any = None
    start = time.monotonic()
    try:
        try:
            container = cl.containers.create(**spec.create_kwargs())
            pump = _LogPump(container, log_fd)
            sampler.start()
            start = time.monotonic()
            container.start()
            from .report.live import BOARD  # the live status line of this run, if the session opened one

            BOARD.attach(spec.name, start, lambda: sampler.latest)
        except docker.errors.APIError as exc:
            msg = exc.explanation if isinstance(exc.explanation, str) else str(exc)
            os.write(log_fd, f"docker: Error response from daemon: {msg}\n".encode())
            return ContainerResult(None, False, time.monotonic() - start, sampler.stop(), start_error=msg)
        pump.start()
        waiter = _Waiter(container)
        # archive transfer: the engine may be on another host, where its pid means nothing here
        probe = CgroupProbe(container.id, _init_pid(container) if transfer is None else None)
        probe.sample()
        timed_out = never_exited = False
        done_at: float | None = None
        deadline = start + timeout_s
        limit_at: float | None = None
        disk = _DiskWatch(spec.out_dir, spec.limits.disk_bytes)
        idle = IdleWatch(exit_grace_s, _cpu_reader(probe, container), spec.out_dir if transfer is None else None)
        while not waiter.finished.wait(poll_s):
            probe.sample()
            now = time.monotonic()
            if disk.exceeded():
                note = f"stopped: it {disk.why()}"
                _kill_quietly(container)
                os.write(log_fd, f"\n[ymir-conformance] {note}\n".encode())
                break
            if done_at is None and (looks_done(sampler.latest, spec.out_dir, done_files) if transfer is None
                                    else _looks_done_remote(sampler.latest, transfer, done_files)):
                done_at = now
                idle.done()
            if limit_at is None and (probe.pids_max_events > 0 or pump.dropped > FLOOD_STOP_BYTES):
                limit_at = now
            if limit_at is not None and now - limit_at >= LIMIT_GRACE_S:
                # a fork bomb at the pids limit or an endless output flood never ends by itself: stop it now
                # rather than at the time limit (LC-11 / LC-13 report it; V1 names the cause)
                note = (f"stopped {LIMIT_GRACE_S:g} s after it hit the pids limit ({spec.limits.pids})"
                        if probe.pids_max_events > 0 else
                        f"stopped after more than {guard.human(FLOOD_STOP_BYTES)} of output beyond the log cap")
            elif done_at is not None and idle.idle():
                worked = (f"; it last worked ({idle.last_busy}) {idle.worked_after_done_s:.0f} s after it was done"
                          if idle.last_busy else "")
                note = (f"stopped: the run was done (monitor.txt at 100% and "
                        f"{', '.join('/out/' + f for f in done_files)} written) and then idle for {exit_grace_s:g} s "
                        f"({idle.observed}){worked}, but it did not exit")
                never_exited = True
            elif now >= deadline:
                # done and idle (if not yet for the whole grace): it never exits; done but still working after
                # it looked done: the work itself ran past the time limit
                never_exited = done_at is not None and idle.quiet_for() >= min(exit_grace_s, DEADLINE_QUIET_S)
                timed_out = not never_exited
                note = f"killed after the {timeout_s:.0f} s time limit"
                if done_at is not None and timed_out:
                    note += (f" (it looked done {now - done_at:.0f} s earlier but was still working: "
                             f"{idle.last_busy or 'busy'})")
            else:
                continue
            _kill_quietly(container)
            os.write(log_fd, f"\n[ymir-conformance] {note}\n".encode())
            break
        duration = time.monotonic() - start
        idle.close()
        waiter.finished.wait(timeout=30)
        probe.sample()  # usually gone by now; the samples taken while it ran count
        oom = _oom_killed(container) or probe.oom_kills > 0
        pump.done.wait(timeout=10)
        return ContainerResult(
            None if timed_out else waiter.exit_code, timed_out, duration, sampler.stop(), oom_killed=oom,
            hit_pids_limit=probe.pids_max_events > 0, pids_peak=probe.pids_peak,
            memory_peak_bytes=probe.memory_peak, log_bytes=pump.seen, log_bytes_dropped=pump.dropped,
            never_exited=never_exited, done_s=None if done_at is None else done_at - start,
            flood_stopped=limit_at is not None and probe.pids_max_events == 0, disk_stopped=disk.stopped,
            disk_used_bytes=disk.used, cpu_usage_s=probe.cpu_usage_s, cpu_periods=probe.cpu_periods,
            cpu_throttled=probe.cpu_throttled, worked_after_done_s=idle.worked_after_done_s)
    finally:
        sampler.stop()
        os.close(log_fd)
        if container is not None and not keep:
            remove_quietly(container)


DEADLINE_QUIET_S = 10.0  # done and this long idle at the time limit: "never exits" rather than "timed out"
STATS_EVERY_S = 2.0  # engine stats calls when the cgroup is not readable here (one call costs ~0.1-1 s)


def _cpu_reader(probe: CgroupProbe, container: Any) -> Callable[[], float | None]:
    """The container's CPU seconds so far: from its cgroup (cheap), else from the engine's stats (a remote
    engine, another pid namespace), at most every :data:`STATS_EVERY_S`; None when neither answers."""
    last: list[float | None] = [None, 0.0]  # value, when read

    def read() -> float | None:
        used = probe.sample_cpu()
        if used is not None:
            return used
        now = time.monotonic()
        if last[0] is not None and now - (last[1] or 0.0) < STATS_EVERY_S:
            return last[0]
        try:
            stats = container.client.api.stats(container.id, stream=False, one_shot=True)
            ns = stats["cpu_stats"]["cpu_usage"]["total_usage"]
            last[0], last[1] = float(ns) / 1e9, now
        except Exception:  # gone, or an engine without stats
            return None
        return last[0]

    return read


class _DiskWatch:
    """How much of the workspace's filesystem a run has used (free space at start minus now, via statvfs: cheap,
    no walk of what the image wrote), against the disk limit and a floor of free space."""

    def __init__(self, path: Path, limit: int | None) -> None:
        self.path, self.limit = path, limit
        self.start = self._free()
        self.used = 0
        self.stopped = False
        self.free = self.start

    def _free(self) -> int:
        try:
            st = os.statvfs(self.path)
        except OSError:
            return -1
        return st.f_bavail * st.f_frsize

    def exceeded(self) -> bool:
        if self.limit is None or self.start < 0:
            return False
        self.free = self._free()
        self.used = max(self.used, self.start - self.free)
        self.stopped = self.used > self.limit or 0 <= self.free < MIN_FREE_BYTES
        return self.stopped

    def why(self) -> str:
        if self.used > (self.limit or 0):
            return (f"used {guard.human(self.used)} of the workspace's disk, over the suite's disk limit of "
                    f"{guard.human(self.limit or 0)}")
        return f"left only {guard.human(self.free)} free on the workspace's disk"


def remove_quietly(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        pass


def reap(cl: docker.DockerClient, session_id: str) -> int:
    """Remove every container left by this session (after a crash of the test process, say)."""
    n = 0
    for c in cl.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={session_id}"},
                                ignore_removed=True):
        remove_quietly(c)
        n += 1
    return n


@dataclass
class Reaped:
    """What :func:`reap_stale` removed, and whose it was."""

    containers: int = 0
    workspaces: int = 0
    owners: dict[str, str] = field(default_factory=dict)  # "pid 1234" (or "session abc") -> why it is gone
    problems: list[str] = field(default_factory=list)  # workspaces that could not be removed (rmtree.remove_tree)

    def __bool__(self) -> bool:
        return bool(self.containers or self.workspaces or self.problems)

    def line(self) -> str:
        def n(count: int, what: str) -> str:
            return f"{count} {what}{'' if count == 1 else 's'}"

        parts = [n(self.containers, "container")] if self.containers else []
        parts += [n(self.workspaces, "workspace")] if self.workspaces else []
        whose = ", ".join(f"{k}: {v}" for k, v in sorted(self.owners.items()))
        sessions = "a session that was" if len(self.owners) == 1 else f"{len(self.owners)} sessions that were"
        line = (f"ymir-conformance: reaped {' and '.join(parts)} left by {sessions} killed ({whose})"
                if parts else "")
        for problem in self.problems:
            line += ("\n" if line else "") + f"ymir-conformance: could not reap a stale workspace: {problem}"
        return line


def _who(owner: Owner | None, session: str) -> str:
    return f"pid {owner.pid}" if owner is not None else f"session {session or '?'}"


def reap_stale(cl: docker.DockerClient, workdir_root: Path | None, spare: tuple[str, ...] = (),
               probe: Probe | None = None) -> Reaped:
    """Remove containers and session workspaces whose owner is gone (``owner.gone``): what a session killed
    by SIGKILL, an OOM kill, a reboot or a lost CI runner left. Live sessions (ours and others' on the same
    engine) and the sessions in ``spare`` are never touched, nor kept ones (--ymir-keep), nor the model cache.
    """
    probe = probe or Probe()
    done = Reaped()
    try:
        found = cl.containers.list(all=True, filters={"label": LABEL_SESSION}, ignore_removed=True)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        found = []
    for c in found:
        labels: dict[str, str] = dict(c.labels or {})
        session = labels.get(LABEL_SESSION, "")
        if session in spare:
            continue
        owner = Owner.from_labels(labels, LABEL_PREFIX, LABEL_SESSION)
        why = gone(owner, engine_time(str(c.attrs.get("Created", ""))), probe)
        if why is None:
            continue
        remove_quietly(c)
        done.containers += 1
        done.owners[_who(owner, session)] = why
    if workdir_root is not None and workdir_root.is_dir():
        for d in sorted(workdir_root.iterdir()):
            if d.name == MODEL_CACHE_DIR or d.name in spare or d.is_symlink() or not d.is_dir() \
                    or not _looks_like_session(d.name):
                continue  # never anything but a session directory: --ymir-workdir may point anywhere
            owner = Owner.read(d)
            try:
                mtime: float | None = d.stat().st_mtime
            except OSError:
                continue
            why = gone(owner, mtime, probe)
            if why is None:
                continue
            problem = remove_tree(d, last=OWNER_FILE)  # the owner file last: a partial removal is reaped again
            if problem is not None:
                done.problems.append(problem)
                continue
            done.workspaces += 1
            done.owners[_who(owner, d.name)] = why
    return done


def _looks_like_session(name: str) -> bool:
    """Session ids are 12 lowercase hex digits (plugin.YmirSession)."""
    return len(name) == 12 and all(ch in "0123456789abcdef" for ch in name)


def new_name(label: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)[:60]
    return f"ymir-conformance-{safe}-{uuid.uuid4().hex[:8]}"


@contextmanager
def docker_client() -> Iterator[docker.DockerClient]:
    cl = client()
    try:
        yield cl
    finally:
        cl.close()


CAT_TIMEOUT_S = 20.0  # `cat` of a few hundred bytes takes well under a second; the engine's start ~0.2 s
CAT_STDERR_CAP = 64 * 1024


def cat_file(cl: docker.DockerClient, image: str, path: str, timeout_s: float = CAT_TIMEOUT_S,
             limits: Limits = DEFAULT_LIMITS) -> tuple[int | None, bytes, bytes]:
    """``docker run --rm IMG cat <path>`` as the platform inspects images: no user, no mounts, no GPU (plus the
    suite's limits and ``--network none``).

    Returns (exit code, stdout, stderr). The exit code is None when the `cat` did not finish cleanly: the engine
    refused to start it, it ran past ``timeout_s`` (killed), or its stdout went past ``guard.CAPS['cat-output']``
    (killed at once; stdout holds the first bytes); stderr then says which. Output is streamed with a cap, never
    held whole.
    """
    cap = guard.CAPS["cat-output"]
    container: Any = None
    try:
        try:
            container = cl.containers.create(image=image, command=["cat", path], network_mode="none",
                                             labels=inspect_labels(), detach=True, **limits.create_kwargs())
            attached = _Attached(container)
        except docker.errors.APIError as exc:
            return None, b"", str(exc.explanation or exc).encode()
        try:
            return _cat(container, attached, timeout_s, cap)
        finally:
            attached.close()
    finally:
        if container is not None:
            remove_quietly(container)


def _cat(container: Any, attached: _Attached, timeout_s: float, cap: int) -> tuple[int | None, bytes, bytes]:
    """Start the attached `cat`, drain its stdout up to ``cap`` (killing it past the cap or the timeout)."""
    try:
        container.start()
    except docker.errors.APIError as exc:
        return None, b"", str(exc.explanation or exc).encode()
    fired = threading.Event()

    def on_timeout() -> None:
        fired.set()
        _kill_quietly(container)

    killer = threading.Timer(timeout_s, on_timeout)
    killer.daemon = True
    killer.start()
    err = bytearray()

    def stdout_chunks() -> Iterator[bytes]:
        for stream_id, data in attached.frames():
            if stream_id == STDERR and len(err) < CAT_STDERR_CAP:
                err.extend(data[: CAT_STDERR_CAP - len(err)])
            elif stream_id == STDOUT:
                yield data

    try:
        out, dropped = guard.drain(stdout_chunks(), cap, stop=True)
    except Exception:  # the connection broke (engine restart): what came so far
        out, dropped = b"", 0
    if dropped:
        killer.cancel()
        attached.close()  # first: the engine will not finish the kill while it is blocked writing to us
        _kill_quietly(container)
        return None, out, (f"stdout went past {guard.human(cap)}, the most the suite reads of `cat` of an "
                           "/img-man file (a template is a few hundred bytes); the `cat` was stopped").encode()
    try:
        status = container.wait(timeout=max(1.0, timeout_s))
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        fired.set()
        _kill_quietly(container)
    killer.cancel()
    if fired.is_set():
        return None, out, f"timed out after {timeout_s:.0f} s (stopped)".encode()
    return int(status.get("StatusCode", -1)), out, bytes(err)


def gpu_support(cl: docker.DockerClient) -> str | None:
    """None when the engine can hand NVIDIA GPUs to containers, else the reason it cannot (for skips)."""
    try:
        info = cl.info()
    except docker.errors.APIError as exc:
        return f"the engine did not answer `docker info`: {exc}"
    runtimes = set((info.get("Runtimes") or {}).keys())
    if "nvidia" not in runtimes and not os.path.exists("/usr/bin/nvidia-container-runtime-hook") \
            and not os.path.exists("/usr/bin/nvidia-container-toolkit"):
        return ("the Docker engine has no NVIDIA runtime (no 'nvidia' in docker info Runtimes and no "
                "nvidia-container-toolkit): GPU tests need a GPU host with the NVIDIA container toolkit")
    return None
