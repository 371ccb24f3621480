"""The error excerpt: the real error found anywhere in an executor log (excerpt.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ymir_conformance.excerpt import exception_name, read_excerpt, scan

CHILD = [
    "Traceback (most recent call last):",
    '  File "/app/train.py", line 40, in <module>',
    "    main()",
    '  File "/app/train.py", line 31, in main',
    "    epochs = parse(cfg)",
    "             ^^^^^^^^^^",
    '  File "/app/train.py", line 12, in parse',
    "    raise ValueError(f\"epochs must be positive, got {n}\")",
    "ValueError: epochs must be positive, got -1",
]
WRAPPER = [
    "Traceback (most recent call last):",
    '  File "/app/start.py", line 20, in <module>',
    "    subprocess.run(cmd, check=True)",
    '  File "/usr/lib/python3.11/subprocess.py", line 571, in run',
    "    raise CalledProcessError(retcode, process.args,",
    "subprocess.CalledProcessError: Command '['python3', '/app/train.py']' returned non-zero exit status 1.",
]
NOISE = [f"\x1b[1;33mcleanup {i}\x1b[0m removing /tmp/work/{i} \x1b]0;title\x07" for i in range(30)]
BEFORE = [f"\x1b[32mINFO\x1b[0m epoch {i // 10} batch {i}: loss 0.{i:03d}" for i in range(200)]


def test_the_wrapped_exception_is_shown_not_the_wrappers_called_process_error() -> None:
    ex = scan(BEFORE + CHILD + ["[start] training failed, cleaning up"] + WRAPPER + NOISE)
    assert ex.error == "ValueError: epochs must be positive, got -1"
    text = ex.render()
    assert text[0] == ("error in the log (37 line(s) before its end): "
                       "ValueError: epochs must be positive, got -1")
    assert "  ValueError: epochs must be positive, got -1" in text
    assert any(line.startswith("  followed by the wrapper's subprocess.CalledProcessError: Command") for line in text)
    assert '    File "/app/train.py", line 12, in parse' in text
    assert not any("\x1b" in line for line in text)
    assert ex.tail[-1] == "cleanup 29 removing /tmp/work/29 "  # colours and the title sequence stripped


def test_the_wrapper_traceback_interleaved_with_the_childs_lines() -> None:
    """stderr of the child and of the wrapper mixed line by line: frames of one between frames of the other."""
    mixed: list[str] = []
    for i in range(max(len(CHILD), len(WRAPPER))):
        if i < len(WRAPPER) - 1:
            mixed.append(WRAPPER[i])
        if i < len(CHILD):
            mixed.append(CHILD[i])
    mixed.append(WRAPPER[-1])
    ex = scan(BEFORE + mixed + NOISE)
    assert ex.error == "ValueError: epochs must be positive, got -1"
    assert ex.to_json()["followed_by"] == [WRAPPER[-1]]


def test_only_the_wrapper_traceback_is_shown_when_the_child_printed_none() -> None:
    ex = scan(BEFORE + ["Killed"] + WRAPPER + NOISE)
    assert ex.error.startswith("subprocess.CalledProcessError: Command")


def test_a_chained_exception_shows_the_original_first_and_what_followed() -> None:
    chained = [
        "Traceback (most recent call last):", '  File "/app/cfg.py", line 3, in load', "    return cfg['epochs']",
        "KeyError: 'epochs'", "", "During handling of the above exception, another exception occurred:", "",
        "Traceback (most recent call last):", '  File "/app/start.py", line 9, in <module>', "    load()",
        "RuntimeError: config.yaml has no epochs",
    ]
    ex = scan(BEFORE + chained)
    assert ex.error == "KeyError: 'epochs'"
    assert "  followed by RuntimeError: config.yaml has no epochs" in ex.render()


def test_an_earlier_handled_traceback_does_not_hide_the_last_one() -> None:
    other = ["Traceback (most recent call last):", '  File "/app/dl.py", line 1, in get', "OSError: offline"]
    ex = scan(other + BEFORE + CHILD + NOISE)
    assert ex.error == CHILD[-1]


def test_prefixed_child_lines_with_timestamps() -> None:
    prefixed = [f"2024-05-01 10:00:{i:02d} [train.py] {line}" for i, line in enumerate(CHILD)]
    ex = scan(BEFORE + prefixed + WRAPPER + NOISE)
    assert ex.error == "ValueError: epochs must be positive, got -1"
    assert '    File "/app/train.py", line 12, in parse' in ex.render()


def test_error_lines_and_platform_codes_without_a_traceback() -> None:
    lines = BEFORE[:50] + ["loss_error: 0.1 (a metric, not an error)", "Error: /in/train-index.tsv is empty",
                           "\x1b[31mERROR\x1b[0m dataset has 0 images", "error_code: 300002",
                           "some more output"] + NOISE
    ex = scan(lines)
    assert ex.error == "error_code: 300002"  # a platform-style code line is the decisive one
    text = ex.render()
    assert text[0].endswith(": error_code: 300002")
    assert "    Error: /in/train-index.tsv is empty" in text and "    ERROR dataset has 0 images" in text
    assert not any("loss_error" in line for line in text)


def test_a_monitor_record_with_state_4_is_a_code_line() -> None:
    ex = scan(["t0001\t1700000000.5\t0.30\t4\t300004", "bye"])
    assert ex.error == "t0001\t1700000000.5\t0.30\t4\t300004"
    assert ex.render()[0].endswith(": t0001\t1700000000.5\t0.30\t4\t300004")  # log_line keeps tabs


def test_a_clean_log_gives_no_excerpt() -> None:
    ex = scan(BEFORE + ["training done", "0 errors"])
    assert not ex.found and ex.render() == [] and ex.to_json()["error"] is None
    assert len(ex.tail) == 15


def test_unrelated_noise_inside_a_traceback_is_skipped() -> None:
    noisy = CHILD[:3] + ["epoch 3: loss 0.1", "INFO saving"] + CHILD[3:]
    assert scan(noisy).error == CHILD[-1]


@pytest.mark.parametrize("line,name", [
    ("ValueError: bad", "ValueError"), ("cv2.error: OpenCV(4.5.5) error", "cv2.error"),
    ("KeyboardInterrupt", "KeyboardInterrupt"), ("torch.cuda.OutOfMemoryError: CUDA out of memory", None),
    ("INFO: epoch 3", None), ("done", None), ("SystemExit: 2", "SystemExit"),
])
def test_exception_names(line: str, name: str | None) -> None:
    if name is None and "." in line.split(":")[0]:
        name = line.split(":")[0]
    assert exception_name(line) == name


def test_control_characters_in_the_error_are_escaped() -> None:
    ex = scan(CHILD[:-1] + ["ValueError: bad \x1b]52;c;aGk=\x07 \u202e name \x00"])
    assert all(ch.isprintable() for line in ex.render() for ch in line)


# -- reading the log through the guarded opener ------------------------------------------------------------

def test_a_real_wrapper_that_prints_200_lines_raises_in_a_subprocess_then_prints_coloured_noise(tmp_path: Path) -> None:
    script = tmp_path / "start.py"
    script.write_text(
        "import subprocess, sys\n"
        "for i in range(200):\n    print(f'\\x1b[32mINFO\\x1b[0m epoch line {i}', flush=True)\n"
        "child = 'def f():\\n    raise ValueError(\"epochs must be positive, got -1\")\\nf()\\n'\n"
        "try:\n    subprocess.run([sys.executable, '-c', child], check=True)\n"
        "finally:\n    for i in range(30):\n        print(f'\\x1b[1;33mcleanup {i}\\x1b[0m', flush=True)\n")
    with open(tmp_path / "ymir-executor-out.log", "wb") as log:
        subprocess.run([sys.executable, str(script)], stdout=log, stderr=log, check=False)
    ex = read_excerpt(tmp_path)
    assert ex.error == "ValueError: epochs must be positive, got -1", ex.render()
    assert ex.to_json()["followed_by"][0].startswith("subprocess.CalledProcessError")  # type: ignore[index]
    assert not ex.window_cut and ex.bytes_scanned == ex.log_bytes


def test_only_the_window_is_read(tmp_path: Path) -> None:
    lines = CHILD + [f"filler line {i:06d} " + "x" * 40 for i in range(40_000)]
    (tmp_path / "ymir-executor-out.log").write_text("\n".join(lines) + "\n")
    ex = read_excerpt(tmp_path, window=1024 * 1024)
    assert ex.window_cut and ex.bytes_scanned == 1024 * 1024 and not ex.found
    assert read_excerpt(tmp_path, window=8 * 1024 * 1024).error == CHILD[-1]


def test_an_endless_line_is_cut_and_the_error_after_it_found(tmp_path: Path) -> None:
    (tmp_path / "ymir-executor-out.log").write_text("a" * 3_000_000 + "\nError: disk full\n")
    ex = read_excerpt(tmp_path)
    assert ex.error == "Error: disk full" and ex.lines_scanned == 2


def test_a_link_or_an_absent_log(tmp_path: Path) -> None:
    assert not read_excerpt(tmp_path).found and read_excerpt(tmp_path).problem == ""
    os.symlink("/etc/passwd", tmp_path / "ymir-executor-out.log")
    ex = read_excerpt(tmp_path)
    assert "was not read" in ex.problem and not ex.found and ex.render() == []


def test_undecodable_bytes_do_not_stop_the_scan(tmp_path: Path) -> None:
    (tmp_path / "ymir-executor-out.log").write_bytes(b"\xff\xfe junk\n" + "\n".join(CHILD).encode() + b"\n")
    assert read_excerpt(tmp_path).error == CHILD[-1]
