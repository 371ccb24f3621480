"""The inotify watcher of the input audit, against local directories and a subprocess that opens files."""
from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ymir_conformance import audit, inotify
from ymir_conformance.audit import IN_ISDIR, IN_OPEN, IN_Q_OVERFLOW, InputWatch, WatchResult, counts_line, summarize
from ymir_conformance.model import INFER, TRAINING

SHA = "ab" * 20


def workspace(tmp_path: Path) -> tuple[Path, Path]:
    """in/ with an index, annotations, a model, and in/assets -> a separate asset cache holding a decoy."""
    in_dir, cache = tmp_path / "in", tmp_path / "asset-cache"
    (in_dir / "annotations" / "ab").mkdir(parents=True)
    (in_dir / "models" / "epoch1").mkdir(parents=True)
    (cache / "ab").mkdir(parents=True)
    (cache / "cd").mkdir()
    (cache / "ab" / f"{SHA}.png").write_bytes(b"png")
    (cache / "cd" / f"{'cd' * 20}.png").write_bytes(b"decoy")
    (in_dir / "annotations" / "ab" / f"{SHA}.txt").write_text("0,1,1,5,5\n")
    (in_dir / "models" / "epoch1" / "model.json").write_text("{}")
    (in_dir / "models" / "epoch1" / "config.yaml").write_text("a: 1\n")
    (in_dir / "train-index.tsv").write_text(f"/in/assets/ab/{SHA}.png\t/in/annotations/ab/{SHA}.txt\n")
    (in_dir / "val-index.tsv").write_text("")
    (in_dir / "candidate-index.tsv").write_text(f"/in/assets/ab/{SHA}.png\n")
    (in_dir / "config.yaml").write_text("model_params_path: [/in/models/epoch1/model.json, "
                                        "/in/models/epoch1/config.yaml]\n")
    os.symlink(cache.resolve(), in_dir / "assets")
    return in_dir, cache


def opener(code: str) -> None:
    """Another process opens files, as a container would (the events are the same)."""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_watch_records_files_opened_by_another_process(tmp_path: Path) -> None:
    in_dir, cache = workspace(tmp_path)
    watch = InputWatch(in_dir, cache).start()
    assert watch.result.audited, watch.result.problem
    opener(f"open({str(in_dir / 'train-index.tsv')!r}).read(); open({str(cache / 'ab' / (SHA + '.png'))!r}).read();"
           f"open({str(in_dir / 'annotations' / 'ab' / (SHA + '.txt'))!r}).read()")
    result = watch.stop()
    assert result.opened == {"/in/train-index.tsv", f"/in/assets/ab/{SHA}.png", f"/in/annotations/ab/{SHA}.txt"}
    assert result.listed == set() and result.complete
    assert result.watches == 8  # in, annotations, annotations/ab, models, models/epoch1, cache, cache/ab, cache/cd
    summary = summarize(result, in_dir, cache, TRAINING)
    assert summary["annotations"] == {"opened": 1, "listed": 1, "missed": []}
    assert summary["assets"] == {"opened": 1, "listed": 1, "missed": []}
    assert summary["decoys"] == {"opened": 0, "present": 1, "examples": []}
    assert not summary["assets_listed"]
    assert summary["train_annotations"] == {"opened": 1, "listed": 1, "missed": []}
    assert summary["val_annotations"] == {"opened": 0, "listed": 0, "missed": []}
    assert summary["predictions"] == {"opened": 0, "examples": []}
    assert counts_line(summary) == "train annotations 1/1, val annotations 0/0, images 1/1, index 1/3, decoys 0/1"


def test_watch_sees_a_listing_of_the_assets_and_the_decoys_read(tmp_path: Path) -> None:
    in_dir, cache = workspace(tmp_path)
    watch = InputWatch(in_dir, cache).start()
    opener(f"import os\nfor r, _, fs in os.walk({str(in_dir / 'assets')!r}):\n"
           "    [open(os.path.join(r, f), 'rb').read(4) for f in fs]")
    summary = summarize(watch.stop(), in_dir, cache, INFER)
    assert summary["assets_listed"]
    assert summary["listed_dirs"] == ["/in/assets", "/in/assets/ab", "/in/assets/cd"]
    assert summary["decoys"]["opened"] == 1 and summary["decoys"]["examples"] == [f"/in/assets/cd/{'cd' * 20}.png"]
    assert summary["candidates"] == {"opened": 1, "listed": 1, "missed": []}
    assert summary["models"]["opened"] == 0 and summary["models"]["listed"] == 2
    assert counts_line(summary).endswith("/in/assets LISTED")


def test_the_watch_walk_itself_and_opening_by_path_are_not_listings(tmp_path: Path) -> None:
    """Setting up the watches opens every directory; that must not count. Opening a file by its path does not
    open its folders."""
    in_dir, cache = workspace(tmp_path)
    watch = InputWatch(in_dir, cache).start()
    opener(f"open({str(in_dir / 'assets' / 'ab' / (SHA + '.png'))!r}, 'rb').read(); "
           f"import os; os.stat({str(in_dir / 'assets' / 'cd')!r})")
    result = watch.stop()
    assert result.listed == set() and result.opened == {f"/in/assets/ab/{SHA}.png"}


def test_events_after_stop_are_not_recorded_and_stop_is_idempotent(tmp_path: Path) -> None:
    in_dir, cache = workspace(tmp_path)
    watch = InputWatch(in_dir, cache).start()
    first = watch.stop()
    (in_dir / "train-index.tsv").read_text()
    assert watch.stop() is first and first.opened == set()


def test_watch_refused_by_inotify_limits_degrades_to_not_audited(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """max_user_watches reached (ENOSPC): the run is recorded as not audited, with the reason."""
    in_dir, cache = workspace(tmp_path)

    class Refusing:
        def init1(self, flags: int) -> int:
            return os.open(os.devnull, os.O_RDONLY)

        def add_watch(self, fd: int, path: bytes, mask: int) -> int:
            ctypes.set_errno(errno.ENOSPC)
            return -1

    monkeypatch.setattr(audit, "_LIBC", Refusing())
    watch = InputWatch(in_dir, cache).start()
    assert not watch.result.audited and "max_user_watches" in watch.result.problem
    summary = audit.finish(watch, in_dir, cache, TRAINING)
    assert summary == {"audited": False, "complete": True, "problem": watch.result.problem}
    assert counts_line(summary).startswith("inputs not audited: inotify refused a watch")


def test_no_inotify_instance_left_degrades_to_not_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_dir, cache = workspace(tmp_path)

    class NoInstance:
        def init1(self, flags: int) -> int:
            ctypes.set_errno(errno.EMFILE)
            return -1

    monkeypatch.setattr(audit, "_LIBC", NoInstance())
    watch = InputWatch(in_dir, cache).start()
    assert not watch.result.audited and "max_user_instances" in watch.result.problem


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_dir, cache = workspace(tmp_path)
    monkeypatch.setenv(audit.ENV_SWITCH, "0")
    watch = audit.watch_inputs(in_dir, cache)
    assert not watch.result.audited and audit.ENV_SWITCH in watch.result.problem


def test_overflow_and_split_events_are_parsed(tmp_path: Path) -> None:
    in_dir, cache = workspace(tmp_path)
    watch = InputWatch(in_dir, cache)
    watch._dirs = {1: "/in", 2: "/in/assets"}

    def event(wd: int, mask: int, name: bytes) -> bytes:
        padded = name + b"\0" * (16 - len(name) % 16) if name else b""
        return inotify.HEADER.pack(wd, mask, 0, len(padded)) + padded

    data = event(1, IN_OPEN, b"config.yaml") + event(2, IN_OPEN | IN_ISDIR, b"") + event(2, IN_OPEN, b"x.png")
    watch._parse(data[:20])  # a read that ends inside an event: kept for the next one
    watch._parse(watch._buf + data[20:])
    assert watch.result.opened == {"/in/config.yaml", "/in/assets/x.png"}
    assert watch.result.listed == {"/in/assets"} and watch.result.events == 3
    watch._parse(event(-1, IN_Q_OVERFLOW, b""))
    assert not watch.result.complete and "overflow" in watch.result.problem


def test_distinct_paths_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "MAX_DISTINCT", 2)
    watch = InputWatch(tmp_path)
    watch._dirs = {1: "/in"}
    for name in (b"a", b"b", b"c"):
        watch._parse(inotify.HEADER.pack(1, IN_OPEN, 0, 16) + name.ljust(16, b"\0"))
    assert len(watch.result.opened) == 2 and not watch.result.complete and watch.result.events == 3


def test_overhead_of_setting_up_and_stopping_is_small(tmp_path: Path) -> None:
    """A quick-profile workspace has about a hundred directories; 300 here."""
    in_dir, cache = workspace(tmp_path)
    for i in range(150):
        (in_dir / "annotations" / f"{i:02x}x").mkdir()
        (cache / f"{i:02x}x").mkdir()
    t0 = time.monotonic()
    watch = InputWatch(in_dir, cache).start()
    result = watch.stop()
    assert result.watches > 300 and time.monotonic() - t0 < 2.0


def test_unaudited_result_summary_keeps_only_the_reason(tmp_path: Path) -> None:
    summary = summarize(WatchResult(audited=False, problem="why"), tmp_path, None, TRAINING)
    assert summary == {"audited": False, "complete": True, "problem": "why"}


def test_counts_show_in_the_terminal_table_and_the_certificate() -> None:
    from ymir_conformance.report.html import render_certificate
    from ymir_conformance.report.terminal import render_summary

    inputs = {"audited": True, "complete": True, "problem": "", "annotations": {"opened": 24, "listed": 24},
              "candidates": {"opened": 8, "listed": 8}, "models": {"opened": 1, "listed": 2},
              "index_files": {"opened": ["/in/candidate-index.tsv"], "present": ["/in/candidate-index.tsv"]},
              "decoys": {"opened": 0, "present": 4}, "assets_listed": False}
    run = {"image": "x:1", "id": "infer-det-voc", "timed_out": False, "exit_code": 0, "duration_s": 1.0,
           "progress_timing": {"first_update_s": 0.1, "updates": 3, "longest_gap_s": 0.2}, "progress": [],
           "inputs_opened": inputs}
    data = {"settings": {}, "images": [{"image": "x:1", "image_id": "sha256:0", "compatibility": [],
                                        "summary": "", "object_types": [], "declared_tasks": []}], "runs": [run]}
    want = "annotations 24/24, candidates 8/8, model files 1/2, index 1/1, decoys 0/4"
    assert f"inputs opened: {want}" in "\n".join(render_summary(data))
    assert f"<td>{want}</td>" in render_certificate(data)  # the certificate's "what the run read" column
    run["inputs_opened"] = {}
    assert "inputs opened" not in "\n".join(render_summary(data))


def test_a_tree_too_big_to_walk_is_not_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders left unwatched would read as files never opened: rather no audit than a false IN-12."""
    in_dir, cache = workspace(tmp_path)
    monkeypatch.setattr(audit, "MAX_WALK", 3)
    watch = InputWatch(in_dir, cache).start()
    assert not watch.result.audited and "entries under" in watch.result.problem
