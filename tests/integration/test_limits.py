"""The suite's containment on a real engine (issue 10, items 3 and 7): a fork bomb stops at the pids limit, a
memory hog is OOM-killed, a stdout flood is capped (and the engine's own log stays bounded), an image that is
done but never exits is stopped after the exit grace, and an inspection `cat` that floods is cut off. Each run
is detected and recorded the way the checks LC-11, LC-12, LC-13 and V1 read it; nothing is left behind.

The containers run the base image with a small Python program as their command (the runner passes none, like
the platform; :class:`ScriptSpec` adds one), and small custom limits so each case takes seconds.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.limits import MiB, Limits, parse_limits
from ymir_conformance.model import TRAINING
from ymir_conformance.runner import (LABEL_RUN, LABEL_SESSION, LABEL_TAG, LOG_CAP_BYTES, ContainerResult,
                                     ContainerSpec, cat_file, new_name, result_files, run_container)

BASE = "ymir-conformance/base:bookworm"


@dataclass(frozen=True)
class ScriptSpec(ContainerSpec):
    """A task container with a command of our choosing (the platform passes none; the image's CMD is bash)."""

    script: str = ""

    def create_kwargs(self) -> dict[str, Any]:
        kw = super().create_kwargs()
        kw["command"] = ["python3", "-c", self.script]
        return kw


@pytest.fixture
def base_image(docker_client: docker.DockerClient) -> str:
    try:
        docker_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{BASE} is missing: run scripts/bootstrap", pytrace=False)
    return BASE


def tag() -> str:
    return os.environ["YMIR_CONFORMANCE_TAG"]  # set by the docker_client fixture


def left_behind(cl: docker.DockerClient) -> list[str]:
    return [c.name for c in cl.containers.list(all=True, filters={"label": f"{LABEL_TAG}={tag()}"},
                                               ignore_removed=True)]


def run(cl: docker.DockerClient, tmp_path: Path, script: str, limits: Limits, timeout_s: float = 40,
        **kw: Any) -> tuple[ContainerResult, ScriptSpec]:
    out = tmp_path / "out"
    (tmp_path / "in").mkdir()
    out.mkdir()
    spec = ScriptSpec(image=BASE, in_dir=tmp_path / "in", out_dir=out, user=None, shm_size="64m",
                      name=new_name(f"limits-{uuid.uuid4().hex[:6]}"), limits=limits, script=script,
                      labels={LABEL_SESSION: "limits-test", LABEL_RUN: "limits", LABEL_TAG: tag()})
    result = run_container(cl, spec, timeout_s=timeout_s, **kw)
    return result, spec


FORK_BOMB = """
import os, signal, sys, time
signal.alarm(20)  # every child and the parent die within 20 s whatever happens
pids, failed, t0 = 0, 0, time.monotonic()
while pids < 10000 and time.monotonic() - t0 < 3:
    try:
        if os.fork() == 0:
            signal.pause()
            os._exit(0)
        pids += 1
    except OSError:
        failed += 1
        time.sleep(0.001)
print(f"started {pids} processes, {failed} forks failed", flush=True)
sys.exit(1 if failed else 0)
"""


def test_fork_bomb_is_contained_and_detected(docker_client: docker.DockerClient, base_image: str,
                                             tmp_path: Path) -> None:
    limits = parse_limits("pids=256,memory=512m", "test")
    result, spec = run(docker_client, tmp_path, FORK_BOMB, limits)
    assert "--pids-limit=256" in spec.argv()
    assert result.hit_pids_limit, result
    assert result.pids_peak is not None and 200 <= result.pids_peak <= 256
    assert result.exit_code == 1 and not result.timed_out and not result.oom_killed
    log = (spec.out_dir / "ymir-executor-out.log").read_text()
    assert "forks failed" in log and "started 10000" not in log
    assert left_behind(docker_client) == []


MEMORY_HOG = """
import time
chunks = []
for i in range(32):  # 512 MiB in touched 16 MiB chunks: twice the test's 256 MiB limit
    chunks.append(bytearray(b"\\x01" * (16 * 1024 * 1024)))
    print(f"{(i + 1) * 16} MiB", flush=True)
print("survived", flush=True)
"""


def test_memory_hog_is_oom_killed_and_detected(docker_client: docker.DockerClient, base_image: str,
                                               tmp_path: Path) -> None:
    limits = parse_limits("memory=256m", "test")
    result, spec = run(docker_client, tmp_path, MEMORY_HOG, limits)
    assert "--memory=256m" in spec.argv() and "--memory-swap=256m" in spec.argv()
    assert result.oom_killed, result
    assert result.exit_code == 137 and not result.hit_pids_limit
    assert result.memory_peak_bytes is None or result.memory_peak_bytes <= 256 * MiB
    assert "survived" not in (spec.out_dir / "ymir-executor-out.log").read_text()
    assert left_behind(docker_client) == []


FLOOD_BYTES = 100 * MiB
STDOUT_FLOOD = f"""
import sys
line = b"y" * 1023 + b"\\n"
for _ in range({FLOOD_BYTES} // 1024):
    sys.stdout.buffer.write(line)
sys.stdout.buffer.flush()
sys.stderr.write("done flooding\\n")
"""


def test_stdout_flood_is_capped_and_counted(docker_client: docker.DockerClient, base_image: str,
                                            tmp_path: Path) -> None:
    result, spec = run(docker_client, tmp_path, STDOUT_FLOOD, parse_limits("on", "test"), keep=True)
    container = docker_client.containers.get(spec.name)
    try:
        engine_log = container.attrs["LogPath"]
        assert os.path.getsize(engine_log) <= 17 * MiB  # the engine's own copy: json-file, max-size=16m, 1 file
    finally:
        container.remove(force=True)
    assert result.exit_code == 0 and not result.timed_out
    assert result.log_bytes == FLOOD_BYTES + len("done flooding\n")  # every byte seen, in order, none lost
    assert result.log_bytes_dropped == result.log_bytes - LOG_CAP_BYTES
    log = spec.out_dir / "ymir-executor-out.log"
    assert LOG_CAP_BYTES <= log.stat().st_size <= LOG_CAP_BYTES + 200
    with open(log, "rb") as f:
        f.seek(LOG_CAP_BYTES)
        assert b"log truncated here" in f.read()
    assert left_behind(docker_client) == []


NEVER_EXITS = """
import os, time
os.makedirs("/out/models", exist_ok=True)
with open("/out/models/result.yaml", "w") as f:
    f.write("model_stages: {}\\n")
with open("/out/monitor.txt", "w") as f:
    f.write(f"t000\\t{time.time():.6f}\\t1.00\\t3\\n")
print("all done, but staying up", flush=True)
time.sleep(3600)
"""


def test_done_but_never_exits_is_stopped_after_the_grace(docker_client: docker.DockerClient, base_image: str,
                                                         tmp_path: Path) -> None:
    result, spec = run(docker_client, tmp_path, NEVER_EXITS, parse_limits("on", "test"), timeout_s=50,
                       done_files=result_files(TRAINING), exit_grace_s=3)
    assert result.never_exited and not result.timed_out
    assert result.done_s is not None and result.done_s < 5
    assert 3 <= result.duration_s - result.done_s < 6  # the grace, not the 50 s time limit
    assert result.exit_code == 137  # killed
    assert "it did not exit" in (spec.out_dir / "ymir-executor-out.log").read_text()
    assert left_behind(docker_client) == []


def test_a_finished_run_that_exits_is_not_marked(docker_client: docker.DockerClient, base_image: str,
                                                 tmp_path: Path) -> None:
    script = NEVER_EXITS.replace("time.sleep(3600)", "time.sleep(0.5)")
    result, _ = run(docker_client, tmp_path, script, parse_limits("off", "test"), done_files=result_files(TRAINING),
                    exit_grace_s=3)
    assert result.exit_code == 0 and not result.never_exited and not result.hit_pids_limit and not result.oom_killed
    assert result.log_bytes_dropped == 0 and result.log_bytes == len("all done, but staying up\n")


def test_inspection_cat_flood_is_cut_off(docker_client: docker.DockerClient, base_image: str) -> None:
    code, out, err = cat_file(docker_client, BASE, "/dev/zero")
    assert code is None  # _inspect_one turns this into IM-01
    assert len(out) == 1 * MiB and set(out) == {0}
    assert b"stdout went past 1 MiB" in err
    code, out, err = cat_file(docker_client, BASE, "/etc/debian_version")
    assert code == 0 and out.strip().startswith(b"12") and err == b""
    code, out, err = cat_file(docker_client, BASE, "/nonexistent")
    assert code == 1 and out == b"" and b"No such file" in err
    assert left_behind(docker_client) == []


DONE_THEN = """
import os, sys, time
os.makedirs("/out/models", exist_ok=True)
with open("/out/models/result.yaml", "w") as f:
    f.write("model_stages: {}\\n")
with open("/out/monitor.txt", "w") as f:
    f.write(f"t000\\t{time.time():.6f}\\t1.00\\t2\\n")
mode, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
n = x = 0
while time.monotonic() < end:
    if mode == "files":  # one small file every 0.25 s: writes, hardly any CPU time
        with open(f"/out/models/part-{n}.txt", "w") as f:
            f.write("x")
        n += 1
        time.sleep(0.25)
    else:  # pure computing: CPU time, no writes, no output
        for i in range(100_000):
            x = (x * 31 + i) % 1_000_003
"""


@dataclass(frozen=True)
class ArgScriptSpec(ScriptSpec):
    args: tuple[str, ...] = ()

    def create_kwargs(self) -> dict[str, Any]:
        kw = super().create_kwargs()
        kw["command"] = ["python3", "-c", self.script, *self.args]
        return kw


def run_args(cl: docker.DockerClient, tmp_path: Path, script: str, args: tuple[str, ...], limits: Limits,
             timeout_s: float = 60, user: str | None = None, **kw: Any) -> tuple[ContainerResult, ArgScriptSpec]:
    out = tmp_path / "out"
    (tmp_path / "in").mkdir()
    out.mkdir()
    spec = ArgScriptSpec(image=BASE, in_dir=tmp_path / "in", out_dir=out, user=user, shm_size="64m",
                         name=new_name(f"limits-{uuid.uuid4().hex[:6]}"), limits=limits, script=script, args=args,
                         labels={LABEL_SESSION: "limits-test", LABEL_RUN: "limits", LABEL_TAG: tag()})
    return run_container(cl, spec, timeout_s=timeout_s, **kw), spec


@pytest.mark.parametrize("mode", ["files", "cpu"])
def test_done_but_still_working_is_not_stopped(docker_client: docker.DockerClient, base_image: str, tmp_path: Path,
                                               mode: str) -> None:
    """A slow finisher (issue 16 item 5): done (monitor 100% + result.yaml), then 12 s of only writing files or
    only computing, then exit 0: with a 4 s exit grace it is not stopped, whatever the host's load (the work is
    seen as CPU time or as writes, not as wall time)."""
    result, spec = run_args(docker_client, tmp_path, DONE_THEN, (mode, "12"), parse_limits("on", "test"),
                            done_files=result_files(TRAINING), exit_grace_s=4)
    assert result.done_s is not None, result
    assert result.exit_code == 0 and not result.never_exited and not result.timed_out, result
    assert result.duration_s - result.done_s >= 11
    assert result.worked_after_done_s >= 8, result
    assert "did not exit" not in (spec.out_dir / "ymir-executor-out.log").read_text()
    assert left_behind(docker_client) == []


def test_never_exits_log_names_the_idleness(docker_client: docker.DockerClient, base_image: str,
                                            tmp_path: Path) -> None:
    result, spec = run(docker_client, tmp_path, NEVER_EXITS, parse_limits("on", "test"), timeout_s=50,
                       done_files=result_files(TRAINING), exit_grace_s=3)
    assert result.never_exited and result.exit_code == 137
    log = (spec.out_dir / "ymir-executor-out.log").read_text()
    assert "idle for 3 s" in log and "no file written under /out" in log
    assert result.cpu_usage_s is None or "no CPU time used" in log


MKNOD = """
import os, stat, sys
kind, major, minor = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mode = (stat.S_IFBLK if kind == "b" else stat.S_IFCHR) | 0o600
try:
    os.mknod("/out/node", mode, os.makedev(major, minor))
    print("created", flush=True)
except OSError as exc:
    print(f"refused: {exc!r}", flush=True)
    sys.exit(1)
"""


def test_root_cannot_make_device_nodes_in_out(docker_client: docker.DockerClient, base_image: str,
                                              tmp_path: Path) -> None:
    """As root (the diagnosis retry), with the suite's capabilities: mknod of the host's disk in /out is refused
    (issue 17 item 1)."""
    result, spec = run_args(docker_client, tmp_path, MKNOD, ("b", "8", "0"), parse_limits("on", "test"), user="0:0")
    assert "--cap-drop=ALL" in spec.argv() and not any("MKNOD" in a for a in spec.argv())
    assert result.exit_code == 1, (spec.out_dir / "ymir-executor-out.log").read_text()
    assert "Operation not permitted" in (spec.out_dir / "ymir-executor-out.log").read_text()
    assert not os.path.lexists(spec.out_dir / "node")
    assert left_behind(docker_client) == []


def test_docker_default_capabilities_would_allow_it(docker_client: docker.DockerClient, base_image: str,
                                                    tmp_path: Path) -> None:
    """The contrast that makes the test above mean something: --ymir-limits=off (the platform's exact run, Docker's
    default capabilities) lets root make a device node in /out. /dev/null's numbers (1,3): harmless on the host."""
    from ymir_conformance.limits import NO_LIMITS
    import stat

    result, spec = run_args(docker_client, tmp_path, MKNOD, ("c", "1", "3"), NO_LIMITS, user="0:0")
    node = spec.out_dir / "node"
    try:
        assert result.exit_code == 0
        assert stat.S_ISCHR(os.lstat(node).st_mode)
    finally:
        if os.path.lexists(node):
            os.unlink(node)
    assert left_behind(docker_client) == []


SPIN = """
import multiprocessing, time
def spin(_):
    end = time.monotonic() + 8
    while time.monotonic() < end:
        pass
with multiprocessing.Pool(2) as pool:
    pool.map(spin, [0, 1])
"""


def test_cpu_limit_throttles_a_spinner(docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    """--cpus (issue 17 item 6): two spinning processes under cpus=0.1 are throttled in most CPU periods, as the
    cgroup counts them (LC-16 reads the same counters)."""
    result, spec = run(docker_client, tmp_path, SPIN, parse_limits("cpus=0.1", "test"), timeout_s=60)
    assert "--cpus=0.1" in spec.argv()
    assert result.exit_code == 0
    assert result.cpu_periods >= 50, result
    assert result.cpu_throttled > 0.5 * result.cpu_periods, result
    assert result.cpu_usage_s is not None and result.cpu_usage_s < 0.2 * result.duration_s + 0.5
    assert left_behind(docker_client) == []
