"""GPU mode for real: runs only where the engine can hand NVIDIA GPUs to containers; skipped with the reason
elsewhere. (Argument building and gpu_id mapping are pinned without a GPU in tests/unit/test_runner_args.py.)"""
from __future__ import annotations

from typing import Any

import docker
import pytest

from ymir_conformance.runner import gpu_support


@pytest.fixture
def gpu_engine(docker_client: docker.DockerClient) -> docker.DockerClient:
    reason = gpu_support(docker_client)
    if reason:
        pytest.skip(reason)
    return docker_client


@pytest.mark.gpu
def test_reference_det_in_gpu_mode(gpu_engine: docker.DockerClient, pytester: pytest.Pytester,
                                   fixture_image: Any) -> None:
    result = pytester.runpytest_subprocess(f"--image={fixture_image('reference-det')}", "--ymir-gpus=0",
                                           "-p", "no:cacheprovider", timeout=900)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*GPUs 0*", "*platform 2.5  PASS*"])
