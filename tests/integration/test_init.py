"""The author on-ramp: `init` writes an executor that builds offline and passes the quick profile as written."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker

from ymir_conformance.__main__ import main

BASE = "ymir-conformance/base:bookworm"  # nothing can be pulled here; the default base is python:3.11-slim


def test_init_builds_and_passes_the_quick_profile(tmp_path: Path, docker_client: docker.DockerClient,
                                                   fixture_image: Any) -> None:
    fixture_image("reference-det")  # bootstrap ran, so the base image exists
    root = tmp_path / "my-executor"
    assert main(["init", "--base", BASE, str(root)]) == 0
    assert (root / "Dockerfile").read_text().startswith("# A minimal YMIR executor")
    assert f"FROM {BASE}" in (root / "Dockerfile").read_text()
    assert "torch" not in (root / "app" / "start.py").read_text().replace("no torch", "")
    assert main(["init", str(root)]) != 0  # never overwrites
    tag = f"ymir-conformance-test/init-{uuid.uuid4().hex[:8]}:dev"
    try:
        subprocess.run(["docker", "build", "--network=none", "-q", "-t", tag, str(root)], check=True,
                       capture_output=True, timeout=600)
        reports = tmp_path / "reports"
        proc = subprocess.run([sys.executable, "-m", "pytest", f"--image={tag}", f"--ymir-report-dir={reports}",
                               "-p", "no:cacheprovider", "-q"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "platform 2.5  PASS       accepted by the platform; conformant" in proc.stdout
        import json

        data = json.loads((reports / "report.json").read_text())
        assert {f["rule"] for f in data["findings"]} == set(), data["findings"]  # not even a SHOULD
    finally:
        docker_client.images.remove(tag, force=True)


def test_the_default_base_is_python_slim(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "x")]) == 0
    assert "FROM python:3.11-slim" in (tmp_path / "x" / "Dockerfile").read_text()
