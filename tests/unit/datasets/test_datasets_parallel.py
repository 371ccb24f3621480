"""Worker processes and writer threads change nothing in the data: same scenes, same files, same bytes."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from ymir_conformance.datasets import export_candidates, export_training_set, generate_scenes
from ymir_conformance.datasets.files import FileSink
from ymir_conformance.model import ObjectType
from ymir_conformance.platform import Release

NAMES = ("person", "cat", "dog")


def _tree(root: Path) -> dict[str, str]:
    return {os.path.relpath(os.path.join(d, f), root): hashlib.sha1(Path(d, f).read_bytes()).hexdigest()
            for d, _, files in os.walk(root) for f in files}


@pytest.mark.parametrize("object_type", [ObjectType.DETECTION, ObjectType.INSTANCE_SEGMENTATION])
def test_worker_processes_render_the_same_scenes_in_the_same_order(object_type: ObjectType) -> None:
    one = list(generate_scenes(7, 80, object_type, NAMES, workers=0))
    many = list(generate_scenes(7, 80, object_type, NAMES, workers=2))
    assert [s.name for s in one] == [s.name for s in many]
    assert [s.image_bytes for s in one] == [s.image_bytes for s in many]
    assert [s.sha1 for s in one] == [s.sha1 for s in many]
    assert [s.objects for s in one] == [s.objects for s in many]
    for a, b in zip(one, many):
        for oa, ob in zip(a.objects, b.objects):
            assert (oa.mask is None and ob.mask is None) or np.array_equal(oa.mask, ob.mask)


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from ymir_conformance.datasets import generate

    monkeypatch.delenv("YMIR_DATASET_WORKERS", raising=False)
    # a process with no other thread (the test process may run daemon threads of earlier tests)
    monkeypatch.setattr(generate.threading, "active_count", lambda: 1)
    assert generate.default_workers(40) == 0  # the quick and standard profiles stay in-process
    assert generate.default_workers(10_000) >= 1
    monkeypatch.setattr(generate.threading, "active_count", lambda: 3)
    assert generate.default_workers(10_000) == 0  # never fork a process that runs other threads
    monkeypatch.setattr(generate.threading, "active_count", lambda: 1)
    monkeypatch.setenv("YMIR_DATASET_WORKERS", "0")
    assert generate.default_workers(10_000) == 0


def test_a_consumer_that_stops_early_leaves_no_worker(tmp_path: Path) -> None:
    import multiprocessing

    it = generate_scenes(1, 400, ObjectType.DETECTION, NAMES, workers=2)
    first = next(it)
    it.close()  # type: ignore[attr-defined]
    assert first.name == "scene_0000.jpg" or first.name == "scene_0000.png"
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("fmt", ["det-ark:raw", "det-voc:raw", "coco:raw"])
def test_threaded_writes_give_the_same_tree(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scenes = list(generate_scenes(3, 60, ObjectType.DETECTION, NAMES))
    export_training_set(tmp_path / "threads", train=scenes[:45], val=scenes[45:], class_names=NAMES,
                        export_format=fmt, release=Release(2, 5))
    from ymir_conformance.datasets import files

    monkeypatch.setattr(files, "WRITER_THREADS", 0)
    export_training_set(tmp_path / "sync", train=scenes[:45], val=scenes[45:], class_names=NAMES,
                        export_format=fmt, release=Release(2, 5))
    assert _tree(tmp_path / "threads") == _tree(tmp_path / "sync")
    assert export_candidates(tmp_path / "c1", scenes) == export_candidates(tmp_path / "c2", scenes)
    assert _tree(tmp_path / "c1") == _tree(tmp_path / "c2")


def test_a_writer_error_reaches_the_caller(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    sink = FileSink(tmp_path)
    sink.write("ok/a.txt", "a")
    sink.write("blocker/b.txt", "b")
    with pytest.raises(NotADirectoryError):
        sink.close()
    assert (tmp_path / "ok" / "a.txt").read_text() == "a"
    with FileSink(tmp_path) as again:
        again.write("ok/c.txt", b"c")
    assert (tmp_path / "ok" / "c.txt").read_bytes() == b"c" and again.files_written == 1
