"""Second Docker engines for the integration tests (scripts/second-engine), with the images they need loaded.

Every engine started here is stopped by the context manager, whatever happens in between (its data root, and
so its loaded images, stays for the next session: loading is skipped when the image id already matches).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "second-engine"
MAIN_URL = os.environ.get("DOCKER_HOST", "") or "unix:///var/run/docker.sock"


@dataclass
class SecondEngine:
    name: str
    url: str
    client: docker.DockerClient

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment, pointed at this engine, without what an outer pytest/xdist put there."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_XDIST_", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST"))}
        env["DOCKER_HOST"] = self.url
        env.update(extra)
        return env


def why_not() -> str | None:
    """Why a second engine cannot run here, or None."""
    if os.geteuid() != 0:
        return "a second dockerd needs root"
    for tool in ("dockerd", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _load(main: docker.DockerClient, engine: SecondEngine, images: tuple[str, ...]) -> None:
    missing = []
    for image in images:
        want = main.images.get(image).id
        try:
            if engine.client.images.get(image).id == want:
                continue
        except docker.errors.ImageNotFound:
            pass
        missing.append(image)
    if not missing:
        return
    save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE, env={**os.environ, "DOCKER_HOST": MAIN_URL})
    load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, capture_output=True, text=True,
                          env=engine.env(), timeout=300)
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(timeout=300) == 0 and load.returncode == 0, f"loading {missing} failed: {load.stderr}"


@contextmanager
def second_engine(main: docker.DockerClient, name: str, images: tuple[str, ...], *flags: str) -> Iterator[SecondEngine]:
    """Start engine ``name`` fresh (stopped first: its flags are ours), load ``images``, stop it at the end."""
    reason = why_not()
    if reason:
        pytest.skip(f"no second Docker engine: {reason}")
    subprocess.run([str(SCRIPT), name, "stop"], capture_output=True, timeout=120)
    try:
        started = subprocess.run([str(SCRIPT), name, "start", *flags], capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, f"scripts/second-engine {name} failed:\n{started.stdout}{started.stderr}"
        url = f"unix:///run/ymir-engines/{name}/docker.sock"
        engine = SecondEngine(name, url, docker.DockerClient(base_url=url, timeout=120))
        try:
            _load(main, engine, images)
            yield engine
        finally:
            engine.client.close()
    finally:
        stopped = subprocess.run([str(SCRIPT), name, "stop"], capture_output=True, text=True, timeout=120)
        sys.stderr.write(stopped.stdout)


def run_suite(engine_env: dict[str, str], cwd: Path, *args: str, timeout: int = 170) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` from ``cwd`` (a user's command line), output captured."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env=engine_env, capture_output=True, text=True, timeout=timeout)
