"""Interrupting a real `pytest --image=...` process (issue 10): SIGINT and SIGTERM clean up at once; after SIGKILL
the next session on the engine reaps what the killed one left (its container and its workspace).

Each case runs `python -m pytest` as a subprocess of its own (not pytester in-process: signals must reach a real
pytest main thread), on the `environment-slow` fixture image, which sleeps for 30 minutes while reporting progress,
so its task container is certainly running when the signal arrives. A fresh YMIR_CONFORMANCE_TAG per case labels
exactly this case's containers.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.runner import LABEL_SESSION, LABEL_TAG, MODEL_CACHE_DIR
from tests.tags import new_tag

START_TIMEOUT_S = 90  # from the subprocess start until its task container runs (inspection, workspace, start)
EXIT_TIMEOUT_S = 30  # after SIGINT / SIGTERM


def suite_cmd(image: str, work: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", f"--image={image}", "--ymir-tasks=training", "-p", "no:cacheprovider",
            f"--ymir-workdir={work}", "--ymir-budget-total=60", *extra]


def ours(cl: docker.DockerClient, tag: str) -> list[Any]:
    return cl.containers.list(all=True, filters={"label": [f"{LABEL_TAG}={tag}", LABEL_SESSION]},
                              ignore_removed=True)


def sessions_left(work: Path) -> list[str]:
    return sorted(d.name for d in work.iterdir() if d.name != MODEL_CACHE_DIR) if work.exists() else []


def wait_running(cl: docker.DockerClient, tag: str, proc: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        running = [c for c in ours(cl, tag) if c.status == "running"
                   and c.labels.get("org.ymir-conformance.run") != "inspect"]
        if running:
            return running[0]
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the suite exited ({proc.returncode}) before its task container ran:\n{out}", pytrace=False)
        time.sleep(0.2)
    pytest.fail(f"no running task container with label {LABEL_TAG}={tag} after {START_TIMEOUT_S} s", pytrace=False)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_session_leaves_nothing(sig: signal.Signals, tmp_path: Path, docker_client: docker.DockerClient,
                                            fixture_image: Any) -> None:
    slow, reference = fixture_image("environment-slow"), fixture_image("reference-det")
    tag = new_tag("interrupt-")
    env = {**os.environ, "YMIR_CONFORMANCE_TAG": tag}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    cwd, work = tmp_path / "cwd", tmp_path / "work"
    cwd.mkdir()
    t0 = time.monotonic()

    def child_signals() -> None:  # a background job may inherit SIGINT ignored: Python then never raises
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    reports = tmp_path / "reports"
    proc = subprocess.Popen(suite_cmd(slow, work, f"--ymir-report-dir={reports}"), cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=child_signals)
    try:
        container = wait_running(docker_client, tag, proc)
        t_running = time.monotonic()
        os.kill(proc.pid, sig)
        try:
            out_b, _ = proc.communicate(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the suite did not exit within {EXIT_TIMEOUT_S} s of {sig.name}", pytrace=False)
        out = out_b.decode(errors="replace")
        t_exit = time.monotonic()
        assert proc.returncode != 0, out
        if sig is signal.SIGKILL:
            assert [c.id for c in ours(docker_client, tag)] == [container.id], "SIGKILL cleans nothing up"
            assert len(sessions_left(work)) == 1
            killed = sessions_left(work)[0]
            # a plain session on the same engine and workdir reaps what the killed one left, then runs normally
            second = subprocess.run(suite_cmd(reference, work), cwd=cwd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=120)
            out2 = second.stdout.decode(errors="replace")
            assert second.returncode in (0, 1), out2  # it ran to completion (verdicts are other tests' business)
            # the container may already be gone: any session starting on this engine meanwhile (other test
            # processes) reaps it too; the workspace in our own workdir only this second session can reap
            assert re.search(rf"ymir-conformance: reaped (1 container and )?1 workspace left by a session that "
                             rf"was killed \(pid {proc.pid}: not running\)", out2), out2
            assert killed not in sessions_left(work)
        else:
            assert "KeyboardInterrupt" in out or "Interrupted" in out, out
            assert (reports / "report.json").is_file(), f"no report written after {sig.name}:\n{out}"
        assert ours(docker_client, tag) == [], f"containers left after {sig.name}:\n{out}"
        assert sessions_left(work) == [], f"workspaces left after {sig.name}: {sessions_left(work)}\n{out}"
        print(f"{sig.name}: container running after {t_running - t0:.1f} s, exit {proc.returncode} "
              f"{t_exit - t_running:.1f} s after the signal, case total {time.monotonic() - t0:.1f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        for c in ours(docker_client, tag):  # only this case's containers (its own tag)
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass
