"""`python -m ymir_conformance judge` on the /in + /out of a real run, without Docker in the loop."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker

from ymir_conformance.options import Settings
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import plan


def judge_cli(in_dir: Path, out_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ymir_conformance", "judge", "--in", str(in_dir), "--out",
                           str(out_dir), *extra], capture_output=True, text=True, timeout=120)


def test_judge_an_existing_training_run(docker_client: docker.DockerClient, fixture_image: Any,
                                        tmp_path: Path) -> None:
    image = fixture_image("reference-det")
    settings = Settings(images=(image,), tasks=("training",), workdir=tmp_path)
    conductor = Conductor(docker_client, settings, tmp_path, uuid.uuid4().hex[:12])
    [spec] = plan([conductor.info(image)], settings)
    record = conductor.get(spec)
    assert record.outcome is not None and record.outcome.succeeded
    in_dir, out_dir = record.outcome.in_dir, record.outcome.out_dir

    ok = judge_cli(in_dir, out_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 MUST and 0 SHOULD rule(s) broken" in ok.stdout

    result = out_dir / "models" / "result.yaml"
    result.write_text(result.read_text().replace("best_stage_name:", "best_stage_name: nope\nold_best:"))
    bad = judge_cli(in_dir, out_dir)
    assert bad.returncode == 1
    assert "[TR-03 MUST]" in bad.stdout and "best_stage_name" in bad.stdout

    on_23 = judge_cli(in_dir, out_dir, "--platform", "2.3", "--json")
    assert on_23.returncode == 1 and '"rule": "TR-03"' in on_23.stdout


def test_rules_lists_the_catalogue_with_levels_per_release() -> None:
    out = subprocess.run([sys.executable, "-m", "ymir_conformance", "rules"], capture_output=True, text=True,
                         timeout=60).stdout
    for rule in ("IM-01", "V1", "MON-01", "TR-01", "TR-12", "INF-04", "INF-11", "MIN-02", "BUD-01"):
        assert f"\n{rule} " in "\n" + out, rule
    assert "MUST on 2.1-2.3" in out  # TR-12 exists only there
