"""The docker arguments of a task run, pinned for each combination (contract §1.3, §1.6, §1.7), with the suite's
containment on (the default), off (the platform's exact run) and overridden (limits.py, --ymir-limits)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ymir_conformance.errors import SettingsError
from ymir_conformance.limits import (DEFAULT_LIMITS, DEFAULT_PIDS, GiB, MiB, NO_LIMITS, Limits, default_memory_bytes,
                                     parse_limits)
from ymir_conformance.model import INFER, MINING, MINING_INFER, TRAINING
from ymir_conformance.runner import ContainerSpec, container_gpu_id, result_files, shm_size_for

LIMITS_8G = Limits(pids=4096, memory_bytes=8 * GiB, log_max_bytes=16 * MiB)
LIMIT_FLAGS = ["--pids-limit=4096", "--memory=8g", "--memory-swap=8g", "--log-driver=json-file",
               "--log-opt=max-size=16m", "--log-opt=max-file=1", "--security-opt=no-new-privileges"]


def spec(**kw: object) -> ContainerSpec:
    base = dict(image="img:1", in_dir=Path("/w/in"), out_dir=Path("/w/out"), user="12345:12345", name="n",
                labels={"l": "v"}, limits=LIMITS_8G)
    base.update(kw)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def test_cpu_mode_no_network_argv() -> None:
    assert spec().argv() == ["docker", "run", "--rm", "-v/w/in:/in:ro", "-v/w/out:/out", "--user", "12345:12345",
                             "--shm-size=16G", "--network", "none", *LIMIT_FLAGS, "--name", "n", "img:1"]


def test_limits_off_is_the_platforms_exact_argv() -> None:
    """--ymir-limits=off: executant.py's command line (contract §1.3) plus only --network none."""
    assert spec(limits=NO_LIMITS).argv() == ["docker", "run", "--rm", "-v/w/in:/in:ro", "-v/w/out:/out", "--user",
                                             "12345:12345", "--shm-size=16G", "--network", "none", "--name", "n",
                                             "img:1"]
    kw = spec(limits=NO_LIMITS).create_kwargs()
    for key in ("pids_limit", "mem_limit", "memswap_limit", "log_config", "security_opt"):
        assert key not in kw
    assert kw["privileged"] is False


def test_limits_on_create_kwargs() -> None:
    kw = spec().create_kwargs()
    assert kw["pids_limit"] == 4096
    assert kw["mem_limit"] == kw["memswap_limit"] == 8 * GiB  # no swap beyond the limit
    assert kw["log_config"]["Type"] == "json-file"
    assert kw["log_config"]["Config"] == {"max-size": "16m", "max-file": "1"}
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["privileged"] is False
    for key in ("pid_mode", "ipc_mode", "userns_mode", "cap_add", "devices"):
        assert key not in kw
    assert kw["network_mode"] == "none"


def test_never_host_namespaces_or_privileged_in_any_combination() -> None:
    for limits in (LIMITS_8G, NO_LIMITS):
        for network in (False, True):
            kw = spec(limits=limits, network=network, gpu_ids=("0",)).create_kwargs()
            assert kw.get("network_mode") in (None, "none")
            assert "pid_mode" not in kw and "ipc_mode" not in kw
            assert kw["privileged"] is False
            argv = spec(limits=limits, network=network).argv()
            assert not any(a.startswith(("--privileged", "--pid", "--ipc", "--network=host")) for a in argv
                           if a != "--pids-limit=4096")


def test_custom_limits_argv_and_kwargs() -> None:
    lim = parse_limits("pids=100,memory=256m,log=1m", "--ymir-limits")
    s = spec(limits=lim)
    assert s.argv()[10:17] == ["--pids-limit=100", "--memory=256m", "--memory-swap=256m", "--log-driver=json-file",
                               "--log-opt=max-size=1m", "--log-opt=max-file=1", "--security-opt=no-new-privileges"]
    kw = s.create_kwargs()
    assert kw["pids_limit"] == 100 and kw["mem_limit"] == 256 * MiB
    # one limit dropped, the others kept
    lim = parse_limits("pids=off", "--ymir-limits", base=LIMITS_8G)
    assert "--pids-limit=4096" not in spec(limits=lim).argv()
    assert "pids_limit" not in spec(limits=lim).create_kwargs()
    assert "--memory=8g" in spec(limits=lim).argv()


def test_default_limits() -> None:
    assert DEFAULT_LIMITS == Limits()
    assert DEFAULT_LIMITS.pids == DEFAULT_PIDS == 4096
    assert DEFAULT_LIMITS.log_max_bytes == 16 * MiB and DEFAULT_LIMITS.no_new_privileges
    assert DEFAULT_LIMITS.memory_bytes == default_memory_bytes()
    assert ContainerSpec(image="i", in_dir=Path("/i"), out_dir=Path("/o"), user=None).limits == DEFAULT_LIMITS
    # min(8 GiB, half the host's RAM), whole MiB
    assert default_memory_bytes(64 * GiB) == 8 * GiB
    assert default_memory_bytes(24 * GiB) == 8 * GiB
    assert default_memory_bytes(6 * GiB) == 3 * GiB
    assert default_memory_bytes(3 * GiB + 5) == 1536 * MiB
    assert default_memory_bytes(0) == 8 * GiB  # unknown RAM


@pytest.mark.parametrize(("value", "expected"), [
    (None, DEFAULT_LIMITS), ("on", DEFAULT_LIMITS), ("ON", DEFAULT_LIMITS), ("off", NO_LIMITS), ("none", NO_LIMITS),
    ("pids=8192", Limits(pids=8192)),
    ("memory=1.5g", Limits(memory_bytes=1536 * MiB)),
    ("pids=100, memory=256m, log=64k", Limits(pids=100, memory_bytes=256 * MiB, log_max_bytes=64 * 1024)),
    ("memory=off,log=off", Limits(memory_bytes=None, log_max_bytes=None)),
    ("memory=512MiB", Limits(memory_bytes=512 * MiB)),
])
def test_parse_limits(value: str | None, expected: Limits) -> None:
    assert parse_limits(value, "--ymir-limits") == expected


@pytest.mark.parametrize(("value", "says"), [
    ("pids=lots", "pids='lots'"), ("pids=3", "at least 16"), ("memory=1x", "not a size"), ("memory=1m", "6m"),
    ("log=1k", "64k"), ("cpus=2", "unknown limit 'cpus'"), ("pids", "not key=value"),
])
def test_parse_limits_rejects(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as exc:
        parse_limits(value, "--ymir-limits")
    assert "--ymir-limits" in str(exc.value) and says in str(exc.value)


def test_limits_describe_round_trips() -> None:
    for lim in (LIMITS_8G, NO_LIMITS, Limits(pids=None, memory_bytes=256 * MiB)):
        assert parse_limits(lim.describe(), "x") == lim or lim.describe() == "off"
    assert LIMITS_8G.describe() == "pids=4096,memory=8g,log=16m,disk=10g"


def test_result_files_per_shape() -> None:
    assert result_files(TRAINING) == ("models/result.yaml",)
    assert result_files(MINING) == ("result.tsv",)
    assert result_files(INFER) == ("infer-result.json",)
    assert result_files(MINING_INFER) == ("result.tsv", "infer-result.json")


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
