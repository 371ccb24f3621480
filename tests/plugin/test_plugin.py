"""The plugin as users meet it: options, help, header, and a normal pytest run left untouched."""
from __future__ import annotations

import pytest

from ymir_conformance.options import OPTIONS



def test_without_image_a_normal_run_is_unchanged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "ymir-conformance:" not in result.stdout.str()  # no header line, no verdict section
    assert "test_conformance" not in result.stdout.str()


def test_help_shows_the_ymir_group_with_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "ymir-conformance: certify YMIR executor images:" in out
    for flag, ini, _, _ in OPTIONS:
        assert flag in out, flag
        assert ini in out, ini
    result.stdout.fnmatch_lines([
        "*--image=REPO:TAG*executor image to certify (repeatable*",
        "*--ymir-profile=NAME*quick | standard | certify*",
        "*--ymir-gpus=IDS*host GPU ids*",
        "*--ymir-platform=RELEASE*",
        "*--ymir-diagnose=off|auto|all",
        "*retries of a failed run, to name its cause. auto*",
    ])


@pytest.mark.parametrize(("args", "message"), [
    (["--ymir-profile=fast"], "*--ymir-profile: profile 'fast' is not one of quick, standard, certify*"),
    (["--ymir-gpus=0,x"], "*--ymir-gpus: '0,x' is not a comma-separated list of distinct host GPU ids*"),
    (["--ymir-user=bob"], "*--ymir-user: 'bob' is not auto, current, root, or a numeric uid:gid*"),
    (["--ymir-budget-total=-3"], "*--ymir-budget-total: '-3' must be a positive number of seconds*"),
    (["--ymir-platform=3.0"], "*--ymir-platform: platform release '3.0' is not known*"),
    (["--ymir-tasks=training,dance"], "*--ymir-tasks: unknown task(s) dance*"),
    (["--ymir-diagnose=sometimes"], "*--ymir-diagnose: 'sometimes' is not one of off, auto, all*"),
    (["--ymir-platform=2.5", "--ymir-gate=2.4"],
     "*--ymir-gate: 2.4 not judged in this session (judged: 2.5); add it to --ymir-platform*"),
    (["--ymir-platform=all", "--ymir-gate=3.0"], "*--ymir-gate: platform release '3.0' is not known*"),
])
def test_bad_option_values_are_usage_errors_naming_the_value(pytester: pytest.Pytester, args: list[str],
                                                             message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_ini_twin_is_validated_and_named(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nymir_profile = turbo\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option ymir_profile: profile 'turbo' is not one of*"])


def test_diagnose_ini_twin_is_validated_and_named(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nymir_diagnose = always\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option ymir_diagnose: 'always' is not one of off, auto, all*"])


def test_gate_ini_twin_is_validated_against_the_judged_releases(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nymir_platform = 2.4-2.5\nymir_gate = 2.1\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini option ymir_gate: 2.1 not judged in this session (judged: 2.4, 2.5)*"])


def test_missing_image_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytest.importorskip("docker")
    from tests.conftest import _engine

    if _engine() is None:
        pytest.skip("no Docker engine")
    result = pytester.runpytest("--image=ymir-conformance/does-not-exist:0", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*image 'ymir-conformance/does-not-exist:0' is not in the local engine, and "
                                 "ymir-conformance never pulls*"])
