"""The docker arguments of a task run, pinned for each combination (contract §1.3, §1.6, §1.7)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ymir_conformance.runner import ContainerSpec, container_gpu_id, shm_size_for


def spec(**kw: object) -> ContainerSpec:
    base = dict(image="img:1", in_dir=Path("/w/in"), out_dir=Path("/w/out"), user="12345:12345", name="n",
                labels={"l": "v"})
    base.update(kw)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def test_cpu_mode_no_network_argv() -> None:
    assert spec().argv() == ["docker", "run", "--rm", "-v/w/in:/in:ro", "-v/w/out:/out", "--user", "12345:12345",
                             "--shm-size=16G", "--network", "none", "--name", "n", "img:1"]


def test_cpu_mode_create_kwargs_have_no_command_and_no_device_request() -> None:
    kw = spec().create_kwargs()
    assert kw["command"] is None
    assert "entrypoint" not in kw and "environment" not in kw
    assert "device_requests" not in kw
    assert kw["network_mode"] == "none"
    assert kw["volumes"] == {"/w/in": {"bind": "/in", "mode": "ro"}, "/w/out": {"bind": "/out", "mode": "rw"}}
    assert kw["user"] == "12345:12345"
    assert kw["labels"] == {"l": "v"}


def test_gpus_map_host_ids_to_a_device_request_and_quoted_flag() -> None:
    s = spec(gpu_ids=("2", "3"), shm_size="32G")
    [req] = s.create_kwargs()["device_requests"]
    assert req["DeviceIDs"] == ["2", "3"]
    assert req["Capabilities"] == [["gpu"]]
    assert '"device=2,3"' in s.argv()
    assert "--shm-size=32G" in s.argv()


def test_network_allowed_uses_default_bridge() -> None:
    s = spec(network=True)
    assert "network_mode" not in s.create_kwargs()
    assert "--network" not in s.argv()


def test_run_as_root_omits_user() -> None:
    assert "user" not in spec(user=None).create_kwargs()
    assert "--user" not in spec(user=None).argv()


@pytest.mark.parametrize(("gpus", "expected"), [((), ""), (("5",), "0"), (("1", "3"), "0,1"), (("0", "1", "2"), "0,1,2")])
def test_container_gpu_id_is_container_relative(gpus: tuple[str, ...], expected: str) -> None:
    assert container_gpu_id(gpus) == expected


@pytest.mark.parametrize(("config", "gpus", "expected"), [
    ({}, (), "16G"), ({}, ("0",), "16G"), ({}, ("0", "1"), "32G"), ({"shm_size": "128G"}, ("0",), "128G"),
    ({"shm_size": ""}, ("0", "1", "2"), "48G"),
])
def test_shm_size_rule(config: dict[str, str], gpus: tuple[str, ...], expected: str) -> None:
    assert shm_size_for(config, gpus) == expected
