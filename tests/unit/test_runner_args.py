"""The docker arguments of a task run, pinned for each combination (contract §1.3, §1.6, §1.7), with the suite's
containment on (the default), off (the platform's exact run) and overridden (limits.py, --ymir-limits)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ymir_conformance.errors import SettingsError
from ymir_conformance.limits import (DEFAULT_LIMITS, DEFAULT_PIDS, FILE_CAPS, NEVER_CAPS, GiB, MiB, NO_LIMITS, Limits,
                                     default_cpus, default_memory_bytes, host_cpus, parse_cpus, parse_limits)
from ymir_conformance.model import INFER, MINING, MINING_INFER, TRAINING
from ymir_conformance.runner import ContainerSpec, container_gpu_id, result_files, shm_size_for

LIMITS_8G = Limits(pids=4096, memory_bytes=8 * GiB, log_max_bytes=16 * MiB, cpus=3.0)
CAP_FLAGS = ["--cap-drop=ALL", "--cap-add=CHOWN", "--cap-add=DAC_OVERRIDE", "--cap-add=FOWNER", "--cap-add=FSETID",
             "--cap-add=SETUID", "--cap-add=SETGID", "--cap-add=KILL"]
LIMIT_FLAGS = ["--pids-limit=4096", "--memory=8g", "--memory-swap=8g", "--log-driver=json-file",
               "--log-opt=max-size=16m", "--log-opt=max-file=1", "--security-opt=no-new-privileges", *CAP_FLAGS,
               "--cpus=3"]


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
    for key in ("pids_limit", "mem_limit", "memswap_limit", "log_config", "security_opt", "cap_drop", "cap_add",
                "nano_cpus"):
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
    for key in ("pid_mode", "ipc_mode", "userns_mode", "devices"):
        assert key not in kw
    assert kw["network_mode"] == "none"
    assert kw["cap_drop"] == ["ALL"]
    assert kw["cap_add"] == list(FILE_CAPS) == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL"]
    assert kw["nano_cpus"] == 3_000_000_000


def test_capabilities_for_every_run_root_or_not() -> None:
    """The root retry gets exactly the first run's containment: all capabilities dropped, the file-ownership set
    added back, never MKNOD, NET_RAW or any SYS_*; no-new-privileges (issue 17 item 1)."""
    for user in ("12345:12345", "0:0", None):
        for network in (False, True):
            s = spec(user=user, network=network, limits=DEFAULT_LIMITS)
            kw, argv = s.create_kwargs(), s.argv()
            assert kw["cap_drop"] == ["ALL"] and kw["security_opt"] == ["no-new-privileges"]
            assert not set(kw["cap_add"]) & set(NEVER_CAPS)
            assert not any(c.startswith("SYS_") for c in kw["cap_add"])
            assert "--cap-drop=ALL" in argv and "--security-opt=no-new-privileges" in argv
            assert [a for a in argv if a.startswith("--cap-add=")] == [f"--cap-add={c}" for c in kw["cap_add"]]
            assert f"--cpus={kw['nano_cpus'] / 1e9:g}" in argv


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
    ("cpus=1", Limits(cpus=1.0)), ("cpus=0.5", Limits(cpus=0.5)), ("cpus=off", Limits(cpus=None)),
])
def test_parse_limits(value: str | None, expected: Limits) -> None:
    assert parse_limits(value, "--ymir-limits") == expected


@pytest.mark.parametrize(("value", "says"), [
    ("pids=lots", "pids='lots'"), ("pids=3", "at least 16"), ("memory=1x", "not a size"), ("memory=1m", "6m"),
    ("log=1k", "64k"), ("gpus=2", "unknown limit 'gpus'"), ("pids", "not key=value"), ("cpus=0.001", "0.01"),
    ("cpus=lots", "cpus='lots'"), ("cpus=100000", "from 0.01 to this host's"), ("cpus=nan", "cpus='nan'"),
])
def test_parse_limits_rejects(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as exc:
        parse_limits(value, "--ymir-limits")
    assert "--ymir-limits" in str(exc.value) and says in str(exc.value)


def test_limits_describe_round_trips() -> None:
    for lim in (Limits(pids=4096, memory_bytes=8 * GiB, log_max_bytes=16 * MiB, cpus=1.0), NO_LIMITS,
                Limits(pids=None, memory_bytes=256 * MiB), Limits(cpus=None), Limits(cpus=0.5)):
        assert parse_limits(lim.describe(), "x") == lim or lim.describe() == "off"
    assert LIMITS_8G.describe() == "pids=4096,memory=8g,log=16m,disk=10g,cpus=3"


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


def test_default_cpus_is_the_hosts_cores_minus_one() -> None:
    assert default_cpus(16) == 15.0 and default_cpus(2) == 1.0 and default_cpus(1) == 1.0
    assert DEFAULT_LIMITS.cpus == default_cpus() == max(1, host_cpus() - 1)
    assert parse_cpus("1.5", "x", cores=4) == 1.5 and parse_cpus("4", "x", cores=4) == 4.0
    with pytest.raises(SettingsError):
        parse_cpus("5", "x", cores=4)
    assert "cpus=" in DEFAULT_LIMITS.describe() and NO_LIMITS.cpus is None and NO_LIMITS.off
    assert Limits(cpus=2.5).argv()[-1] == "--cpus=2.5" and Limits(cpus=2.5).create_kwargs()["nano_cpus"] == 2_500_000_000
