"""diagnosis.py: the evidence table and the retry decision (no Docker)."""
from __future__ import annotations

from typing import Any

import pytest

from ymir_conformance.diagnosis import (RETRY_MAX_S, Cause, RetryKind, decide, describe, find_evidence,
                                       network_evidence, printable)

TRACE = ["Traceback (most recent call last):", '  File "/app/start.py", line 12, in <module>', "    main()"]


def run(lines: list[str], mode: str = "auto", **kw: Any) -> Any:
    args: dict[str, Any] = dict(exit_code=1, timed_out=False, hit_limit=False, duration_s=5.0, log_lines=lines,
                                user_is_root=False, cpu_mode=True, had_network=False)
    args.update(kw)
    return decide(mode, **args)


@pytest.mark.parametrize(("line", "subject"), [
    ("PermissionError: [Errno 13] Permission denied: '/out/ymir-executor-out.log'", "/out/ymir-executor-out.log"),
    ("PermissionError: [Errno 13] Permission denied: '/root/.cache/ymir_ref'", "/root/.cache/ymir_ref"),
    ("mkdir: cannot create directory '/tmp/runs': Permission denied", "/tmp/runs"),
    ("open /home/app/.config/settings.json: permission denied", "/home/app/.config/settings.json"),
    ("Error: EACCES: permission denied, open '/app/cache/index.json'", "/app/cache/index.json"),
    ("PermissionError: [Errno 13] Permission denied: 'labels.cache'", "labels.cache"),
    ("KeyError: 'getpwuid(): uid not found: 12345'", ""),
])
def test_permission_errors_on_files_the_image_owns_are_root_evidence(line: str, subject: str) -> None:
    [ev] = find_evidence([*TRACE, line])
    assert ev.cause is Cause.PERMISSION and ev.subject == subject and ev.line_no == 4
    d = run(["epoch 0", *TRACE, line, "cleanup done"])
    [retry] = d.retries
    assert retry.kind is RetryKind.ROOT and retry.rule == "LC-09" and retry.reason.startswith("log shows ")
    if subject:
        assert subject in retry.reason


@pytest.mark.parametrize("line", [
    "PermissionError: [Errno 13] Permission denied: '/in/train-index.tsv'",  # /in is read-only: LC-03's
    "OSError: [Errno 30] Read-only file system: '/in/x.cache'",
    "PermissionError: [Errno 13] Permission denied: '/dev/nvidia0'",
])
def test_permission_errors_root_cannot_fix_are_no_evidence(line: str) -> None:
    assert find_evidence([line]) == []
    d = run([line])
    assert d.retries == () and "no evidence" in d.not_retried


@pytest.mark.parametrize("line", [
    "ValueError: invalid literal for int() with base 10: ''",
    "    ids = [int(g) for g in gpu_id.split(',')]  # int('') in CPU mode",
    "RuntimeError: CUDA error: Invalid device string: 'cuda:'",
    "RuntimeError: CUDA error: invalid device ordinal",
    "IndexError: list index out of range while reading gpu_id",
])
def test_gpu_id_parsing_errors_retry_with_gpu_id_0_in_cpu_mode(line: str) -> None:
    [ev] = find_evidence([line])
    assert ev.cause is Cause.GPU_ID
    [retry] = run([*TRACE, line]).retries
    assert retry.kind is RetryKind.GPU_ID and retry.rule == "LC-07"
    assert run([line], cpu_mode=False).retries == ()  # GPU mode: gpu_id is not empty
    assert run([line], clean_no_gpu=True).retries == ()  # failed cleanly with 300102, as LC-07 allows


def test_needing_a_gpu_is_not_a_gpu_id_parsing_error() -> None:
    assert find_evidence(["RuntimeError: Found no NVIDIA driver on your system"]) == []


@pytest.mark.parametrize(("lines", "url", "what"), [
    (["downloading https://github.com/ultralytics/assets/releases/yolov5s.pt to /tmp",
      "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>"],
     "https://github.com/ultralytics/assets/releases/yolov5s.pt", "a name-resolution failure"),
    (["ymir_ref: downloading pretrained backbone from http://10.255.255.1/weights/backbone.bin ...",
      "ymir_ref: task failed: [300301 NETWORK_ERROR] cannot download pretrained weights: [Errno 101] Network is "
      "unreachable"], "http://10.255.255.1/weights/backbone.bin", "an unreachable network"),
    (["requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
      "exceeded (Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection "
      "refused'))"], "huggingface.co:443", "a failed connection"),
    (["curl: (6) Could not resolve host: pypi.org"], "", ""),
])
def test_network_failures_are_diagnosed_from_the_log_and_never_retried(lines: list[str], url: str,
                                                                      what: str) -> None:
    ev = network_evidence(lines)
    assert ev is not None and ev.cause is Cause.NETWORK and ev.subject == url
    d = run(lines)
    assert d.retries == () and d.network == ev and "never retried" in d.not_retried
    if url:
        assert describe(ev) == f"{what} while fetching {url}"
    else:
        assert "Could not resolve" in describe(ev)
    assert run(lines, had_network=True).network is None  # --ymir-allow-network: the run had one


def test_the_kind_of_failure_is_read_from_the_whole_line() -> None:
    """A long line is cut for display, but what it shows is read before the cut."""
    line = ("hostile: task failed: [300301 NETWORK_ERROR] cannot download pretrained weights from "
            "http://172.17.0.1:47913/weights/backbone.bin: " + "x" * 120 + " [Errno 101] Network is unreachable")
    ev = network_evidence([line])
    assert ev is not None and len(ev.line) <= 160
    assert describe(ev) == "an unreachable network while fetching http://172.17.0.1:47913/weights/backbone.bin"


def test_a_refused_connection_to_the_images_own_local_server_is_not_the_network() -> None:
    assert network_evidence(["ConnectionRefusedError: [Errno 111] Connection refused (127.0.0.1:6006)"]) is None


def test_no_evidence_no_retry() -> None:
    d = run([*TRACE, "ValueError: the validation set is empty", "ERROR 300002: dataset error"])
    assert d.retries == () and d.evidence == () and d.network is None
    assert "no evidence" in d.not_retried


def test_at_most_one_retry_the_evidence_nearest_the_exit_decides() -> None:
    lines = ["PermissionError: [Errno 13] Permission denied: '/tmp/warm.cache' (ignored, going on)", *TRACE,
             "ValueError: invalid literal for int() with base 10: ''"]
    d = run(lines)
    assert [r.kind for r in d.retries] == [RetryKind.GPU_ID] and len(d.evidence) == 2
    assert [r.kind for r in run(lines, user_is_root=True).retries] == [RetryKind.GPU_ID]
    assert [r.kind for r in run(lines[:1], user_is_root=True).retries] == []  # root already: nothing to vary


def test_a_long_run_is_not_retried_under_auto_but_is_under_all() -> None:
    line = "PermissionError: [Errno 13] Permission denied: '/out/x'"
    d = run([line], duration_s=RETRY_MAX_S + 1)
    assert d.retries == () and f"{RETRY_MAX_S:g} s retry threshold" in d.not_retried and "/out/x" in d.not_retried
    assert len(run([line], duration_s=RETRY_MAX_S).retries) == 1  # at the threshold: retried
    assert [r.kind for r in run([line], "all", duration_s=7200).retries] == [RetryKind.ROOT, RetryKind.NETWORK,
                                                                            RetryKind.GPU_ID]


def test_off_never_retries_but_still_reads_the_network_evidence() -> None:
    lines = ["PermissionError: [Errno 13] Permission denied: '/out/x'", "Temporary failure in name resolution"]
    d = run(lines, "off")
    assert d.retries == () and d.network is not None and d.not_retried == "--ymir-diagnose=off"


def test_all_retries_exhaustively_whatever_the_log_says() -> None:
    d = run(["ValueError: the validation set is empty"], "all")
    assert [r.kind for r in d.retries] == [RetryKind.ROOT, RetryKind.NETWORK, RetryKind.GPU_ID]
    assert all(r.reason == "--ymir-diagnose=all (exit 1)" for r in d.retries)
    assert [r.kind for r in run([], "all", user_is_root=True, had_network=True, cpu_mode=False).retries] == []


@pytest.mark.parametrize("kw", [dict(exit_code=0), dict(exit_code=None), dict(timed_out=True),
                                dict(hit_limit=True)])
def test_no_diagnosis_of_a_success_a_timeout_or_a_limit(kw: dict[str, Any]) -> None:
    line = "PermissionError: [Errno 13] Permission denied: '/out/x'"
    assert run([line], **kw).retries == () and run([line], "all", **kw).retries == ()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        run([], "sometimes")


def test_evidence_is_printable_and_bounded() -> None:
    line = "\x1b[31mPermissionError: [Errno 13] Permission denied: '/out/\x1b]0;PWNED\x07x'\x1b[0m" + "y" * 500
    [ev] = find_evidence([line])
    assert "\x1b" not in ev.line and "\x07" not in ev.line and len(ev.line) <= 160
    assert printable("a\udc80b") == "a\\udc80b"
    many = [f"line {i}" for i in range(10_000)] + ["Permission denied: '/out/late'"]
    [late] = find_evidence(["Permission denied: '/out/early'", *many])  # only the last SCAN_LINES are read
    assert late.subject == "/out/late"
