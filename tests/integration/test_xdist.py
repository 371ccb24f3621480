"""pytest-xdist from the outside: a plain `python -m pytest --image=A --image=B -n 2` subprocess, started from an
empty directory, with the Docker engine's own event stream as the witness of how many containers ran.

No pytester here on purpose: what is checked is what a user's command line does, counted by the engine, not by
the plugin's own report (which is what the pytester test in test_plugin_e2e.py once trusted alone).
"""
from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from tests.tags import new_tag

LABEL_TAG = "org.ymir-conformance.tag"
LABEL_RUN = "org.ymir-conformance.run"
LABEL_PID = "org.ymir-conformance.pid"
IMAGES = ("reference-det", "reference-semseg")
DISTINCT_RUNS = 8  # per image in the quick profile: training, infer, mining, mining+infer


@dataclass
class Session:
    proc: subprocess.CompletedProcess[str]
    wall_s: float
    task_creates: collections.Counter[str]  # run id -> container creates the engine saw
    inspect_creates: int  # inspection containers (`cat /img-man/...`): run=inspect or no run label
    work: Path

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def reported_container_runs(self) -> int:
        found = re.findall(r"^container runs: (\d+)", self.proc.stdout, re.M)
        assert len(found) == 1, f"no single 'container runs: N' line in:\n{self.output[-4000:]}"
        return int(found[0])


def _env(tag: str) -> dict[str, str]:
    """The user's environment plus our tag, without what an outer pytest (or xdist worker) put there."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"))}
    env["YMIR_CONFORMANCE_TAG"] = tag
    return env


def _argv(images: list[str], work: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *(f"--image={i}" for i in images), "-p", "no:cacheprovider",
            f"--ymir-workdir={work}", *args]


def run_plain(cl: docker.DockerClient, tmp_path: Path, images: list[str], *args: str) -> Session:
    tag = new_tag()
    cwd = tmp_path / f"cwd-{tag}"
    cwd.mkdir()  # empty: no conftest, no ini, rootdir of its own
    work = tmp_path / f"work-{tag}"
    creates = EngineCreates(cl, tag)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(_argv(images, work, *args), cwd=cwd, env=_env(tag), capture_output=True, text=True,
                              timeout=900)
    finally:
        wall = time.monotonic() - t0
        creates.stop()
    return Session(proc, wall, creates.tasks(), creates.inspections(), work)


@pytest.fixture
def images(fixture_image: Any) -> list[str]:
    return [fixture_image(name) for name in IMAGES]


def assert_each_run_once(s: Session) -> None:
    assert s.proc.returncode == 0, s.output[-6000:]
    repeated = {run: n for run, n in s.task_creates.items() if n != 1}
    assert not repeated, f"container runs that happened more than once (engine events): {repeated}"
    assert len(s.task_creates) == DISTINCT_RUNS, sorted(s.task_creates)
    # the terminal's count is the engine's count: neither de-duplicated nor inflated
    assert s.reported_container_runs() == sum(s.task_creates.values())


def test_loadgroup_runs_each_container_once_across_workers(docker_client: docker.DockerClient,
                                                           images: list[str], tmp_path: Path) -> None:
    parallel = run_plain(docker_client, tmp_path, images, "-n", "2", "--dist", "loadgroup", "-v")
    assert_each_run_once(parallel)
    # every test that needs one training ran where it ran: one xdist group per training, named in the node ids
    groups = set(re.findall(r"\]@(ymir:\S+)", parallel.proc.stdout))
    assert len(groups) == len(IMAGES), groups  # one training per image in the quick profile
    serial = run_plain(docker_client, tmp_path, images, "-n", "0")
    assert_each_run_once(serial)
    print(f"\ntwo images, quick profile: -n 0 {serial.wall_s:.1f} s, -n 2 --dist loadgroup {parallel.wall_s:.1f} s "
          f"(container runs {sum(parallel.task_creates.values())} vs {sum(serial.task_creates.values())}; "
          f"inspection containers {parallel.inspect_creates} vs {serial.inspect_creates})")


def test_plain_n_2_schedules_by_group_too(docker_client: docker.DockerClient, images: list[str],
                                          tmp_path: Path) -> None:
    """`-n 2` alone means xdist's --dist load, which spreads a training's tests over both workers: each worker
    then trained (15 or 16 container runs for 8). The plugin makes it schedule by group and says so."""
    s = run_plain(docker_client, tmp_path, images, "-n", "2")
    assert_each_run_once(s)
    assert "--dist load ran as --dist loadgroup" in s.proc.stdout


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _worker_pids(controller: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) != controller
            and _descends_from(int(p.name), controller)
            and b"python" in Path(f"/proc/{p.name}/cmdline").read_bytes().split(b"\0")[0]]


@pytest.mark.parametrize("restarts", [None, "0"], ids=["replaced", "max-worker-restart-0"])
def test_a_killed_worker_fails_its_tests_and_leaves_no_container(docker_client: docker.DockerClient,
                                                                 images: list[str], tmp_path: Path,
                                                                 restarts: str | None) -> None:
    """SIGKILL the worker that holds a task container. xdist reports the test it was running as failed
    ("worker 'gwN' crashed while running ...") and, with loadgroup, hands the rest of that group to another
    worker (a replacement, or with --max-worker-restart=0 the surviving one); the controller reaps the dead
    worker's containers and workspace in pytest_testnodedown and counts its runs from the engine's events."""
    cl = docker_client
    tag = new_tag()
    cwd, work = tmp_path / "cwd", tmp_path / "work"
    cwd.mkdir()
    log = tmp_path / "controller.log"
    extra = [] if restarts is None else ["--max-worker-restart", restarts]
    creates = EngineCreates(cl, tag)
    with log.open("w") as out:
        controller = subprocess.Popen(_argv(images, work, "-n", "2", "--dist", "loadgroup", "-v", *extra), cwd=cwd,
                                      env=_env(tag), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        victim: Any = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and controller.poll() is None:
            for c in cl.containers.list(all=True, filters={"label": [f"{LABEL_TAG}={tag}", LABEL_RUN]},
                                        ignore_removed=True):
                if c.labels.get(LABEL_RUN) != "inspect":
                    victim = c
                    break
            else:
                time.sleep(0.05)
        assert victim is not None, f"no task container appeared:\n{log.read_text()[-4000:]}"
        owner = int(victim.labels.get(LABEL_PID, "0"))
        if not owner:  # containers without owner labels: the worker is one of the controller's python children
            owner = _worker_pids(controller.pid)[0]
        assert owner != controller.pid and _descends_from(owner, controller.pid), (owner, controller.pid)
        os.kill(owner, signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            victim.reload()
            held = f"container {victim.name} ({victim.status}) still there when its worker died"
        except docker.errors.NotFound:
            held = f"container {victim.name} already removed when its worker died"
        try:
            rc = controller.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the controller did not finish within 180 s of the worker's death:\n"
                        f"{log.read_text()[-4000:]}")
        took = time.monotonic() - killed_at
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
            controller.wait()
        creates.stop()
    text = log.read_text()
    print(f"\nkilled worker pid {owner} ({held}); the controller exited {rc} {took:.1f} s later")
    assert rc != 0, text[-4000:]
    crashed = re.search(r"ymir-conformance: xdist worker (gw\d+) crashed", text)
    assert crashed, text[-4000:]
    assert re.search(rf"worker '{crashed.group(1)}' crashed while running", text), text[-4000:]
    assert "ymir-conformance verdict" in text  # the run finished and reported what the other worker did
    left = cl.containers.list(all=True, filters={"label": f"{LABEL_TAG}={tag}"}, ignore_removed=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"
    leftovers = [d.name for d in work.iterdir() if d.name != "model-cache"] if work.exists() else []
    assert not leftovers, f"workspaces left behind: {leftovers}"
    tasks = creates.tasks()
    found = re.findall(r"^container runs: (\d+)", text, re.M)
    # the terminal's count is the engine's, the dead worker's runs included (the controller counts them live)
    assert found and int(found[0]) == sum(tasks.values()), (found, tasks)
    print(f"container runs: {sum(tasks.values())} (engine events), {len(tasks)} distinct")
    print("\n".join(line for line in text.splitlines() if re.search(r"crashed|node down|worker gw", line)))
