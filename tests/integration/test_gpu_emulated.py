"""GPU mode on a real engine without a GPU ("emulated GPU"): a second dockerd whose PATH starts with a stand-in
``nvidia-container-runtime-hook`` (scripts/second-engine --gpu-stub), so the engine registers its NVIDIA device
driver and honours device requests. What this proves: the device request the suite sends carries the host GPU
ids, the container is handed exactly those (NVIDIA_VISIBLE_DEVICES), config.yaml maps them to
``gpu_id: '0,1'`` / ``gpu_count: 2``, xdist workers get disjoint GPU groups, and the reference executor passes
in GPU mode. What it cannot prove: CUDA. The ``gpu`` marker test (test_gpu.py) stays for real hardware.
"""
from __future__ import annotations

import collections
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from engines_kit import SecondEngine, run_suite, second_engine

from ymir_conformance.limits import NO_LIMITS
from ymir_conformance.runner import ContainerSpec
from tests.tags import new_tag

ENGINE = "ymirt-gpu"
LABEL_TAG = "org.ymir-conformance.tag"
LABEL_SESSION = "org.ymir-conformance.session"


def say(line: str) -> None:
    sys.stdout.write(f"emulated GPU: {line}\n")


@pytest.fixture(scope="module")
def gpu_engine(docker_client: docker.DockerClient, fixture_image: Any) -> Iterator[SecondEngine]:
    images = (fixture_image("reference-det"), "ymir-conformance/base:bookworm")
    with second_engine(docker_client, ENGINE, images, "--gpu-stub") as engine:
        say(f"engine {engine.url} with a stand-in nvidia-container-runtime-hook")
        yield engine


def _kept_device_ids(engine: SecondEngine, tag: str) -> dict[str, list[list[str]]]:
    """session id -> the DeviceIDs of each kept task container of a tagged run (the containers are removed)."""
    found: dict[str, list[list[str]]] = collections.defaultdict(list)
    for c in engine.client.containers.list(all=True, filters={"label": f"{LABEL_TAG}={tag}"}):
        if c.labels.get("org.ymir-conformance.run", "inspect") != "inspect":
            reqs = c.attrs["HostConfig"].get("DeviceRequests") or []
            assert len(reqs) == 1 and reqs[0]["Capabilities"] == [["gpu"]], reqs
            found[c.labels[LABEL_SESSION]].append(list(reqs[0]["DeviceIDs"]))
        c.remove(force=True)
    return found


def _configs(work: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in work.rglob("in/config.yaml")]


def test_emulated_gpu_container_sees_the_host_ids(gpu_engine: SecondEngine, tmp_path: Path) -> None:
    """The suite's own create kwargs (ContainerSpec) with host GPUs 1 and 3: the engine records the device request
    and the container gets NVIDIA_VISIBLE_DEVICES=1,3 (the device driver's doing, not an env the suite sets)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    spec = ContainerSpec(image="ymir-conformance/base:bookworm", in_dir=tmp_path / "in", out_dir=tmp_path / "out",
                         user=None, gpu_ids=("1", "3"), name=f"ymirt-gpu-{uuid.uuid4().hex[:8]}",
                         limits=NO_LIMITS)
    kwargs = spec.create_kwargs()
    kwargs["command"] = ["sh", "-c", "echo NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"]
    assert "--gpus" in spec.argv() and '"device=1,3"' in spec.argv()
    c = gpu_engine.client.containers.create(**kwargs)
    try:
        reqs = c.attrs["HostConfig"]["DeviceRequests"]
        say(f"HostConfig.DeviceRequests = {reqs}")
        assert [(r["DeviceIDs"], r["Capabilities"]) for r in reqs] == [(["1", "3"], [["gpu"]])]
        c.start()
        assert c.wait(timeout=60)["StatusCode"] == 0
        out = c.logs().decode()
        say(f"container printed {out.strip()!r}")
        assert "NVIDIA_VISIBLE_DEVICES=1,3" in out
    finally:
        c.remove(force=True)


def test_emulated_gpu_reference_passes_in_gpu_mode(gpu_engine: SecondEngine, fixture_image: Any,
                                                   tmp_path: Path) -> None:
    """`DOCKER_HOST=<gpu engine> pytest --image=reference-det --ymir-gpus=0,1`: PASS; every task container asked
    for host GPUs 0,1; config.yaml said gpu_id '0,1', gpu_count 2."""
    tag = new_tag()
    work = tmp_path / "work"
    try:
        result = run_suite(gpu_engine.env(YMIR_CONFORMANCE_TAG=tag), tmp_path,
                           f"--image={fixture_image('reference-det')}", "--ymir-gpus=0,1", "--ymir-keep",
                           f"--ymir-workdir={work}")
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-6000:]
        assert "GPUs 0,1" in out and "platform 2.5  PASS" in out, out[-3000:]
        configs = _configs(work)
        assert configs and all(c["gpu_id"] == "0,1" and c["gpu_count"] == 2 for c in configs), configs
        say(f"{len(configs)} config.yaml files: gpu_id '0,1', gpu_count 2")
    finally:
        devices = _kept_device_ids(gpu_engine, tag)
        shutil.rmtree(work, ignore_errors=True)
    runs = [ids for per in devices.values() for ids in per]
    say(f"{len(runs)} task containers, DeviceIDs {sorted(set(map(tuple, runs)))}")
    assert runs and all(ids == ["0", "1"] for ids in runs), devices


def test_emulated_gpu_xdist_workers_get_disjoint_gpu_groups(gpu_engine: SecondEngine, fixture_image: Any,
                                                           tmp_path: Path) -> None:
    """`--ymir-gpus=0,1,2,3 -n 2` over two input families (two training groups, one per worker): each worker's
    containers ask for one slice, the slices are disjoint, and no GPU is handed to two workers."""
    tag = new_tag()
    work = tmp_path / "work"
    try:
        result = run_suite(gpu_engine.env(YMIR_CONFORMANCE_TAG=tag), tmp_path,
                           f"--image={fixture_image('reference-det')}", "--ymir-gpus=0,1,2,3", "-n", "2",
                           "--ymir-platform=1.1,2.5", "--ymir-keep", f"--ymir-workdir={work}")
        out = result.stdout + result.stderr
        assert result.returncode == 0, out[-6000:]
        gpu_ids = sorted({(c["gpu_id"], c["gpu_count"]) for c in _configs(work)})
        assert gpu_ids == [("0,1", 2)], gpu_ids  # container-relative ids: each worker has two GPUs
    finally:
        devices = _kept_device_ids(gpu_engine, tag)
        shutil.rmtree(work, ignore_errors=True)
    groups = {session: sorted(set(map(tuple, per))) for session, per in devices.items()}
    say(f"GPU groups per xdist worker session: {groups}")
    assert all(len(g) == 1 for g in groups.values()), groups  # one worker, one group, for all its runs
    used = [g[0] for g in groups.values()]
    assert set(used) <= {("0", "1"), ("2", "3")}, used
    assert len(used) == len(set(used)) == 2, f"both workers ran, on disjoint GPUs: {groups}"


def test_emulated_gpu_too_few_gpus_for_the_workers_is_a_usage_error(gpu_engine: SecondEngine, fixture_image: Any,
                                                                   tmp_path: Path) -> None:
    result = run_suite(gpu_engine.env(), tmp_path, f"--image={fixture_image('reference-det')}", "--ymir-gpus=0",
                       "-n", "2", f"--ymir-workdir={tmp_path / 'work'}", timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 4, out[-3000:]
    assert "each worker needs a GPU of its own" in out, out[-3000:]
