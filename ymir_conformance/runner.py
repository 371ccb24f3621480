"""Reaching the image: run a container exactly as the platform's ``executant.py`` does (contract §1.3-1.9).

``docker run --rm -v <in>:/in:ro -v <out>:/out --user uid:gid [--gpus "device=<ids>"] --shm-size=<shm>
--name <name> <image>``: no command, no entrypoint override, no environment. We use the Docker SDK and add
what a test harness needs: labels (so strays can be reaped), ``--network none`` unless allowed, a wall-clock
timeout that kills the container, stdout+stderr appended to ``/out/ymir-executor-out.log`` as it is produced
(capped), a live monitor.txt sampler, and removal of the container in every case.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from .errors import DockerUnavailable, ImageNotFound
from .model import ProgressSample
from .progress import MonitorSampler

LABEL_SESSION = "org.ymir-conformance.session"
LABEL_RUN = "org.ymir-conformance.run"
LABEL_TAG = "org.ymir-conformance.tag"  # from $YMIR_CONFORMANCE_TAG: lets a caller (our own tests) find its containers


def run_labels(session_id: str, run: str) -> dict[str, str]:
    labels = {LABEL_SESSION: session_id, LABEL_RUN: run}
    if os.environ.get("YMIR_CONFORMANCE_TAG"):
        labels[LABEL_TAG] = os.environ["YMIR_CONFORMANCE_TAG"]
    return labels
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
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    extra_mounts: tuple[tuple[Path, str, str], ...] = ()  # (host path, container path, mode)

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
            "volumes": self.volumes(),
            "shm_size": self.shm_size,
            "detach": True,
        }
        if self.user is not None:
            kwargs["user"] = self.user
        if not self.network:
            kwargs["network_mode"] = "none"
        requests_ = self.device_requests()
        if requests_:
            kwargs["device_requests"] = requests_
        return kwargs

    def argv(self) -> list[str]:
        """The equivalent ``docker run`` command line, for reports and for reproducing a run by hand."""
        argv = ["docker", "run", "--rm", f"-v{self.in_dir}:/in:ro", f"-v{self.out_dir}:/out"]
        for host, cpath, mode in self.extra_mounts:
            argv.append(f"-v{host}:{cpath}:{mode}")
        if self.user is not None:
            argv += ["--user", self.user]
        if self.gpu_ids:
            argv += ["--gpus", f'"device={",".join(self.gpu_ids)}"']
        argv.append(f"--shm-size={self.shm_size}")
        if not self.network:
            argv += ["--network", "none"]
        argv += ["--name", self.name, self.image]
        return argv


@dataclass
class ContainerResult:
    exit_code: int | None  # None: never started, or killed at the timeout
    timed_out: bool
    duration_s: float
    progress: list[ProgressSample]
    start_error: str = ""  # the engine refused to create/start the container (e.g. no CMD, bad shm size)


def client(timeout: int = 120) -> docker.DockerClient:
    """A Docker client, or a :class:`DockerUnavailable` error that says how to get an engine."""
    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
        return c
    except Exception as exc:
        raise DockerUnavailable(
            f"no Docker engine answers ({exc}). Run scripts/bootstrap (it installs Debian's docker.io and "
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


def _pump_logs(container: Any, log_fd: int, done: threading.Event) -> None:
    written = 0
    try:
        for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
            if written < LOG_CAP_BYTES:
                piece = chunk[: LOG_CAP_BYTES - written]
                os.write(log_fd, piece)
                written += len(piece)
                if written >= LOG_CAP_BYTES:
                    os.write(log_fd, b"\n[ymir-conformance] log truncated here: over 64 MiB of output\n")
    except Exception:  # the container went away; whatever was written stays
        pass
    finally:
        done.set()


def run_container(cl: docker.DockerClient, spec: ContainerSpec, timeout_s: float, keep: bool = False,
                  sample_interval_s: float = 0.01) -> ContainerResult:
    """Run one task container to completion (or the timeout), always removing it unless ``keep``."""
    log_path = spec.out_dir / "ymir-executor-out.log"
    # Opened before start and written through the fd: an image cannot redirect our writes with a symlink.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    sampler = MonitorSampler(spec.out_dir / "monitor.txt", interval_s=sample_interval_s)
    container: Any = None
    start = time.monotonic()
    try:
        try:
            container = cl.containers.create(**spec.create_kwargs())
            sampler.start()
            start = time.monotonic()
            container.start()
        except docker.errors.APIError as exc:
            msg = exc.explanation if isinstance(exc.explanation, str) else str(exc)
            os.write(log_fd, f"docker: Error response from daemon: {msg}\n".encode())
            return ContainerResult(None, False, time.monotonic() - start, sampler.stop(), start_error=msg)
        pumped = threading.Event()
        threading.Thread(target=_pump_logs, args=(container, log_fd, pumped), daemon=True).start()
        timed_out = False
        exit_code: int | None = None
        try:
            status = container.wait(timeout=timeout_s)
            exit_code = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            try:
                container.kill()
            except docker.errors.APIError:
                pass
            os.write(log_fd, f"\n[ymir-conformance] killed after the {timeout_s:.0f} s time limit\n".encode())
        duration = time.monotonic() - start
        pumped.wait(timeout=10)
        return ContainerResult(exit_code, timed_out, duration, sampler.stop())
    finally:
        sampler.stop()
        os.close(log_fd)
        if container is not None and not keep:
            remove_quietly(container)


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
    for c in cl.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={session_id}"}):
        remove_quietly(c)
        n += 1
    return n


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


def cat_file(cl: docker.DockerClient, image: str, path: str, timeout_s: float = 60) -> tuple[int | None, bytes, bytes]:
    """``docker run --rm IMG cat <path>`` as the platform inspects images: no user, no mounts, no GPU.

    Returns (exit code or None on timeout/start failure, stdout, stderr).
    """
    container: Any = None
    try:
        try:
            container = cl.containers.create(image=image, command=["cat", path], network_mode="none",
                                             labels={LABEL_RUN: "inspect"}, detach=True)
            container.start()
        except docker.errors.APIError as exc:
            return None, b"", str(exc.explanation or exc).encode()
        try:
            status = container.wait(timeout=timeout_s)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return None, b"", f"timed out after {timeout_s:.0f} s".encode()
        out = container.logs(stdout=True, stderr=False)
        err = container.logs(stdout=False, stderr=True)
        return int(status.get("StatusCode", -1)), out, err
    finally:
        if container is not None:
            remove_quietly(container)


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
