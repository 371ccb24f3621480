"""The one guarded door (ymir_conformance.guard): every way an image can turn a read into a host read, a hang or
a memory blow-up is refused with a sentence naming the problem, and the normal cases still read."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import yaml

from ymir_conformance import guard
from ymir_conformance.errors import UnsafeOutput
from ymir_conformance.workspace import package_model, write_yaml
from ymir_conformance.model import ObjectType


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """An /out-like tree with every hostile kind of entry next to a normal file."""
    root = tmp_path / "out"
    (root / "models" / "epoch_1").mkdir(parents=True)
    (root / "models" / "epoch_1" / "model.pt").write_bytes(b"weights")
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_text("CANARY")
    os.symlink(host, root / "models" / "epoch_1" / "host")  # a directory link out of the tree
    os.symlink(host / "secret.txt", root / "models" / "linked.pt")  # a file link out of the tree
    os.symlink("/dev/zero", root / "zero")
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    return root


def test_reads_a_regular_file(tree: Path) -> None:
    assert guard.read_bytes(tree, "models/epoch_1/model.pt", 100) == b"weights"


@pytest.mark.parametrize(("rel", "problem"), [
    ("models/epoch_1/host/secret.txt", "its directory component 'models/epoch_1/host' is a symlink"),
    ("models/linked.pt", "is a symlink (to "),
    ("zero", "is a symlink (to '/dev/zero')"),
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("sock", "is a socket, not a regular file"),
    ("models", "is a directory, not a regular file"),
    ("models/../models/epoch_1/model.pt", "climbs out of its directory with '..'"),
])
def test_refuses_links_special_files_and_escapes_without_blocking(tree: Path, rel: str, problem: str) -> None:
    start = time.monotonic()
    with pytest.raises(UnsafeOutput) as err:
        guard.read_bytes(tree, rel, 1024)
    assert problem in err.value.problem
    assert "CANARY" not in err.value.problem
    assert time.monotonic() - start < 1  # a FIFO never blocks the reader


def test_absent_is_file_not_found(tree: Path) -> None:
    with pytest.raises(FileNotFoundError):
        guard.read_bytes(tree, "models/nope.pt", 10)


def test_cap_is_named_in_the_refusal(tree: Path) -> None:
    (tree / "big").write_bytes(b"x" * 2048)
    with pytest.raises(UnsafeOutput, match="is 2 KiB, over the 1 KiB this suite reads"):
        guard.read_bytes(tree, "big", 1024)


def test_tail_lines_never_raises_and_never_follows(tree: Path) -> None:
    (tree / "log").write_text("".join(f"line {i}\n" for i in range(100)) + "\x1b[31mred\n")
    assert guard.tail_lines(tree, "log", 2) == ["line 99", "\N{REPLACEMENT CHARACTER}[31mred"]
    assert guard.tail_lines(tree, "nope", 5) == []
    [line] = guard.tail_lines(tree, "fifo", 5)
    assert "was not read" in line and "FIFO" in line
    assert "CANARY" not in " ".join(guard.tail_lines(tree, "models/linked.pt", 5))


def test_walk_lists_links_but_never_enters_them(tree: Path) -> None:
    names = dict(guard.walk(tree))
    assert "models/epoch_1/host" in names and not any(n.startswith("models/epoch_1/host/") for n in names)


@pytest.mark.parametrize("name", ["", ".", "..", "/tmp/x", "../../x", "a/b", "a\nb", "a\0b", "x" * 256, 3, None])
def test_plain_name_refuses_anything_but_one_plain_component(name: object) -> None:
    assert guard.plain_name(name) is None


def test_plain_relpath() -> None:
    assert guard.plain_relpath("sub/model.pt") == ("sub", "model.pt")
    assert guard.plain_relpath("/abs/model.pt") is None
    assert guard.plain_relpath("../model.pt") is None


def test_copy_file_never_overwrites_or_follows(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy.pt"
    assert guard.copy_file(tree, "models/epoch_1/model.pt", dest) == 7
    with pytest.raises(FileExistsError):
        guard.copy_file(tree, "models/epoch_1/model.pt", dest)
    os.symlink(tmp_path / "elsewhere", tmp_path / "link.pt")
    with pytest.raises(FileExistsError):
        guard.copy_file(tree, "models/epoch_1/model.pt", tmp_path / "link.pt")
    assert not (tmp_path / "elsewhere").exists()


def test_drain_keeps_the_cap_and_counts_the_rest() -> None:
    assert guard.drain([b"abc", b"defg", b"hi"], 5) == (b"abcde", 4)
    assert guard.drain(iter([b"a" * 10] * 1000), 5, stop=True) == (b"aaaaa", 5)


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize(("text", "problem"), [
    (BILLION_LAUGHS, "alias bomb"),
    ("- " * 100_000 + "x", "nested more than 64 levels"),
    ("".join("  " * i + "-\n" for i in range(500)), "nested more than 64 levels"),
    ("[" * 100_000, "nested more than 64 levels"),
    ("a: &a [*a]", "recursive YAML alias"),
    ("\n".join(f"k{i}: *a" if i else "k0: &a 1" for i in range(200)), "more than 100 YAML aliases"),
])
def test_bounded_yaml(text: str, problem: str) -> None:
    with pytest.raises(UnsafeOutput, match=problem):
        guard.load_yaml(text)


def test_bounded_yaml_still_reads_normal_documents_and_small_aliases() -> None:
    assert guard.load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    assert guard.load_yaml("") is None
    with pytest.raises(yaml.YAMLError):
        guard.load_yaml("a: [")


def test_bounded_json() -> None:
    assert guard.load_json('{"detection": {}}') == {"detection": {}}
    for deep in ("[" * 1_000_000 + "]" * 1_000_000, "[" * 100 + "]" * 100):
        with pytest.raises(UnsafeOutput, match="nested more than 64 levels"):
            guard.load_json(deep)


# -- package_model: host paths only from plain names, links never followed --------------------------------

def _result(out: Path, stages: dict[object, list[str]], best: str) -> None:
    write_yaml(out / "models" / "result.yaml", {
        "best_stage_name": best,
        "model_stages": {k: {"stage_name": str(k), "files": v, "mAP": 0.5, "timestamp": 1} for k, v in stages.items()},
    })


@pytest.mark.parametrize("key", ["/tmp/ymir-guard-abs", "../../../../../../tmp/ymir-guard-dotdot", ".."])
def test_package_model_never_writes_outside_its_destination(tmp_path: Path, key: str) -> None:
    out = tmp_path / "out"
    (out / "models" / "epoch_1").mkdir(parents=True)
    (out / "models" / "epoch_1" / "model.pt").write_bytes(b"w")
    (out / "models" / "model.pt").write_bytes(b"w")
    _result(out, {key: ["model.pt"], "epoch_1": ["model.pt"]}, "epoch_1")
    pkg = package_model(out, tmp_path / "pkg", {"class_names": ["a"]}, ObjectType.DETECTION)
    assert pkg is not None and set(pkg.stages) == {"epoch_1"}
    assert not Path("/tmp/ymir-guard-abs").exists() and not Path("/tmp/ymir-guard-dotdot").exists()
    again = package_model(out, tmp_path / "pkg", {"class_names": ["a"]}, ObjectType.DETECTION)  # no SameFileError
    assert again is not None


def test_package_model_never_copies_through_a_link(tree: Path, tmp_path: Path) -> None:
    _result(tree, {"epoch_1": ["model.pt", "host/secret.txt", "../linked.pt"]}, "epoch_1")
    pkg = package_model(tree, tmp_path / "pkg", {"class_names": ["a"]}, ObjectType.DETECTION)
    assert pkg is not None and pkg.stages == {"epoch_1": ("model.pt",)}
    for dirpath, _, files in os.walk(tmp_path / "pkg"):
        for f in files:
            assert b"CANARY" not in (Path(dirpath) / f).read_bytes()


def test_package_model_survives_unreadable_results(tree: Path, tmp_path: Path) -> None:
    (tree / "models" / "result.yaml").write_text(BILLION_LAUGHS.replace("a:", "best_stage_name:", 1))
    assert package_model(tree, tmp_path / "pkg", {}, ObjectType.DETECTION) is None
    (tree / "models" / "result.yaml").unlink()
    os.mkfifo(tree / "models" / "result.yaml")
    assert package_model(tree, tmp_path / "pkg", {}, ObjectType.DETECTION) is None
