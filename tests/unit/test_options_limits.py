"""--ymir-limits / ymir_limits and --ymir-exit-grace / ymir_exit_grace: parsed once into the frozen Settings."""
from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest

from ymir_conformance.errors import SettingsError
from ymir_conformance.limits import DEFAULT_EXIT_GRACE_S, DEFAULT_LIMITS, MiB, NO_LIMITS, Limits
from ymir_conformance.options import Settings, resolve


class FakeConfig:
    """Just what options.resolve reads: getoption (command line), getini (ini file), rootpath."""

    def __init__(self, cli: dict[str, Any] | None = None, ini: dict[str, Any] | None = None) -> None:
        self.cli = cli or {}
        self.ini = ini or {}
        self.rootpath = Path("/tmp/root")

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.cli.get(name, default)

    def getini(self, name: str) -> Any:
        return self.ini.get(name)


def settings(cli: dict[str, Any] | None = None, ini: dict[str, Any] | None = None) -> Settings:
    return resolve(FakeConfig(cli, ini))  # type: ignore[arg-type]


def test_defaults_are_limits_on_and_a_30_s_grace() -> None:
    s = settings()
    assert s.limits == DEFAULT_LIMITS and s.limits.pids == 4096 and s.limits.log_max_bytes == 16 * MiB
    assert s.exit_grace_s == DEFAULT_EXIT_GRACE_S == 30.0
    assert Settings().limits == DEFAULT_LIMITS and Settings().exit_grace_s == 30.0


def test_off_and_overrides_from_the_command_line() -> None:
    assert settings({"ymir_limits": "off"}).limits == NO_LIMITS
    assert settings({"ymir_limits": "pids=512,memory=2g"}).limits == Limits(pids=512, memory_bytes=2048 * MiB)
    assert settings({"ymir_exit_grace": "3"}).exit_grace_s == 3.0


def test_command_line_beats_ini() -> None:
    s = settings({"ymir_limits": "on", "ymir_exit_grace": "5"}, {"ymir_limits": "off", "ymir_exit_grace": "9"})
    assert s.limits == DEFAULT_LIMITS and s.exit_grace_s == 5.0
    s = settings({}, {"ymir_limits": "memory=256m", "ymir_exit_grace": "9"})
    assert s.limits.memory_bytes == 256 * MiB and s.exit_grace_s == 9.0


def test_settings_stay_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        settings().limits = NO_LIMITS  # type: ignore[misc]


@pytest.mark.parametrize(("cli", "ini", "says"), [
    ({"ymir_limits": "pids=lots"}, {}, "--ymir-limits: pids='lots'"),
    ({}, {"ymir_limits": "gpus=1"}, "ini option ymir_limits: unknown limit 'gpus'"),
    ({"ymir_exit_grace": "-1"}, {}, "--ymir-exit-grace: '-1' must be a positive number of seconds"),
    ({}, {"ymir_exit_grace": "soon"}, "ini option ymir_exit_grace: 'soon' is not a number of seconds"),
])
def test_bad_values_name_the_option(cli: dict[str, Any], ini: dict[str, Any], says: str) -> None:
    with pytest.raises(SettingsError) as exc:
        settings(cli, ini)
    assert says in str(exc.value)
