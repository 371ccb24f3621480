"""--ymir-set on a real container: the edit reaches config.yaml and changes what the reference image does."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.integration.test_plugin_e2e import assert_valid_report


def test_training_epochs_set_to_one_trains_one_stage(pytester: pytest.Pytester, fixture_image: Any) -> None:
    image = fixture_image("reference-det")
    work, reports = pytester.path / "work", pytester.path / "reports"
    try:
        result = pytester.runpytest_subprocess(
            f"--image={image}", "-p", "no:cacheprovider", "--ymir-tasks=training", "--ymir-set", "training.epochs=1",
            "--ymir-keep", f"--ymir-workdir={work}", f"--ymir-report-dir={reports}", timeout=900)
    finally:  # --ymir-keep keeps the stopped containers too: remove ours
        cl = docker.from_env()
        for c in cl.containers.list(all=True, filters={"label": f"org.ymir-conformance.tag="
                                                                f"{os.environ['YMIR_CONFORMANCE_TAG']}"}):
            c.remove(force=True)
        cl.close()
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["ymir-conformance: hyper-parameters set: training.epochs=1"])
    configs = [p for p in work.rglob("in/config.yaml") if "export_format" in yaml.safe_load(p.read_text())]
    assert len(configs) == 1, configs  # the one training workspace, kept
    config = yaml.safe_load(configs[0].read_text())
    assert config["epochs"] == 1 and type(config["epochs"]) is int
    result_yaml = yaml.safe_load((configs[0].parents[1] / "out" / "models" / "result.yaml").read_text())
    assert list(result_yaml["model_stages"]) == ["epoch_1"]  # the reference trains `epochs` epochs, one stage each
    data = assert_valid_report(reports / "report.json")
    assert data["settings"]["hyper_params"] == ["training.epochs=1"]
    assert "hyper-parameters set: training.epochs=1" in (reports / "certificate.html").read_text()


def test_reserved_key_is_a_usage_error_before_any_container(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--image=ymir-conformance/reference-det:latest", "-p", "no:cacheprovider",
                                           "--ymir-set=training.class_names=[a]")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ymir-set: 'class_names' is a platform-reserved config.yaml key*"])
    assert not Path(pytester.path / ".ymir-work").exists()
