"""The one guarded door (ymir_conformance.guard): every way an image can turn a read into a host read, a hang or
a memory blow-up is refused with a sentence naming the problem, and the normal cases still read."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

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
    assert guard.tail_lines(tree, "log", 2) == ["line 99", "red"]
    assert guard.tail_lines(tree, "nope", 5) == []
    [line] = guard.tail_lines(tree, "fifo", 5)
    assert "was not read" in line and "FIFO" in line
    assert "CANARY" not in " ".join(guard.tail_lines(tree, "models/linked.pt", 5))


def test_walk_lists_links_but_never_enters_them(tree: Path) -> None:
    names = dict(guard.walk(tree))
    assert "models/epoch_1/host" in names and not any(n.startswith("models/epoch_1/host/") for n in names)


def test_tail_lines_shows_escapes_never_sends_them(tree: Path) -> None:
    (tree / "log").write_bytes("osc52 \x1b]52;c;UFdORUQ=\x07 title \x1b]0;PWNED\x07 c1 \x9b2J bidi \u202e end\n"
                               .encode() + b"raw \x9b31m\n")
    lines = guard.tail_lines(tree, "log", 5)
    assert lines == ["osc52  title  c1  bidi \\u202e end", "raw \ufffd31m"]
    assert all(ln.isprintable() for ln in lines)


@pytest.mark.parametrize("name", ["", ".", "..", "/tmp/x", "../../x", "a/b", "a\nb", "a\0b", "x" * 256, 3, None,
                                  "\ud800", "w\udcff.pt", "esc\x1b]0;t\x07", "c1\x9b2J", "\x85"])
def test_plain_name_refuses_anything_but_one_plain_component(name: object) -> None:
    assert guard.plain_name(name) is None


@given(st.text(st.characters(codec=None), max_size=40))
def test_plain_name_never_raises_and_what_it_accepts_can_be_a_file_name(name: str) -> None:
    ok = guard.plain_name(name)
    assert (ok is None) == bool(guard.name_problem(name))
    if ok is not None:
        assert 0 < len(ok.encode("utf-8")) <= 255 and ok not in (".", "..")
        assert not any(c in "/\\" or ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in ok)


def test_name_problem_says_why() -> None:
    assert "cannot be encoded" in guard.name_problem("\ud800")
    assert "control characters" in guard.name_problem("a\x1bb")
    assert "256 bytes" in guard.name_problem("x" * 256)
    assert guard.name_problem("epoch_10.pt") == ""


@pytest.mark.parametrize("rel", ["models/\ud800.pt", "models/\ud800/x.pt", "models/a\x00b"])
def test_unencodable_paths_are_refused_never_a_crash(tree: Path, rel: str) -> None:
    for call in (lambda: guard.read_bytes(tree, rel, 10), lambda: guard.lstat_beneath(tree, rel),
                 lambda: guard.open_regular(tree, rel)):
        with pytest.raises(UnsafeOutput, match="cannot be encoded|NUL"):
            call()


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


# -- copies: sparse-aware, apparent bytes against the caps, refusals name the sizes ------------------------

MiB = 1024 ** 2


def _sparse_file(path: Path, size: int, extents: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        for offset, data in extents:
            f.seek(offset)
            f.write(data)
        f.truncate(size)


def _holes_supported(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    _sparse_file(probe, 8 * MiB, [])
    return os.stat(probe).st_blocks * 512 < MiB


def test_copy_keeps_holes_and_bytes(tree: Path, tmp_path: Path) -> None:
    if not _holes_supported(tmp_path):
        pytest.skip("this filesystem stores no holes")
    data = [(1 * MiB, os.urandom(300_000)), (9 * MiB + 123, b"middle" * 1000), (30 * MiB, b"tail")]
    _sparse_file(tree / "models" / "sparse.pt", 48 * MiB, data)  # ends in a hole: the size must still be 48 MiB
    src = os.stat(tree / "models" / "sparse.pt")
    dest = tmp_path / "copy.pt"
    assert guard.copy_file(tree, "models/sparse.pt", dest) == 48 * MiB
    out = os.stat(dest)
    assert out.st_size == src.st_size
    assert out.st_blocks <= src.st_blocks + 64, (out.st_blocks, src.st_blocks)  # holes stayed holes
    assert dest.read_bytes() == (tree / "models" / "sparse.pt").read_bytes()
    again = tmp_path / "again.pt"
    guard.clone_file(dest, again)  # the suite's own copies (model cache, /in/models) keep the holes too
    assert os.stat(again).st_blocks <= src.st_blocks + 64 and again.read_bytes() == dest.read_bytes()


def test_copy_of_a_dense_file_is_exact(tree: Path, tmp_path: Path) -> None:
    blob = os.urandom(5 * MiB + 17)
    (tree / "models" / "dense.pt").write_bytes(blob)
    assert guard.copy_file(tree, "models/dense.pt", tmp_path / "d.pt") == len(blob)
    assert (tmp_path / "d.pt").read_bytes() == blob
    (tree / "models" / "empty.pt").write_bytes(b"")
    assert guard.copy_file(tree, "models/empty.pt", tmp_path / "e.pt") == 0


@pytest.mark.parametrize(("size", "words"), [
    (1024 ** 4, ["is 1 TiB (1 TiB apparent, ", "allocated on disk), over the 4 GiB this suite copies"]),
    (3 * 1024 ** 3, ["sparse beyond reason (3 GiB apparent, ", "allocated on disk)", "1/8"]),
])
def test_oversized_and_hollow_files_are_refused_with_their_sizes(tree: Path, tmp_path: Path, size: int,
                                                                  words: list[str]) -> None:
    _sparse_file(tree / "models" / "bomb.pt", size, [(MiB, b"w" * 4096)])
    dest = tmp_path / "bomb.pt"
    start = time.monotonic()
    with pytest.raises(UnsafeOutput) as err:
        guard.copy_file(tree, "models/bomb.pt", dest)
    assert all(w in err.value.problem for w in words), err.value.problem
    assert not dest.exists() and time.monotonic() - start < 1  # refused before a byte was read


def test_package_model_skips_what_it_will_not_copy_and_counts_apparent_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _holes_supported(tmp_path):
        pytest.skip("this filesystem stores no holes")
    monkeypatch.setitem(guard.CAPS, "model-package", 40 * MiB)
    out = tmp_path / "out"
    (out / "models" / "e").mkdir(parents=True)
    (out / "models" / "e" / "model.pt").write_bytes(b"w" * 1000)
    for name in ("a.bin", "b.bin"):  # 24 MiB apparent each, 6 MiB data: together over the 40 MiB package cap
        _sparse_file(out / "models" / "e" / name, 24 * MiB, [(0, os.urandom(6 * MiB))])
    _sparse_file(out / "models" / "e" / "tib.bin", 1024 ** 4, [])
    _result(out, {"e": ["model.pt", "a.bin", "b.bin", "tib.bin"]}, "e")
    pkg = package_model(out, tmp_path / "pkg", {"class_names": ["a"]}, ObjectType.DETECTION)
    assert pkg is not None and pkg.stages == {"e": ("model.pt", "a.bin")}
    packed = os.stat(tmp_path / "pkg" / "e" / "a.bin")
    assert packed.st_size == 24 * MiB and packed.st_blocks * 512 < 8 * MiB
    assert not (tmp_path / "pkg" / "e" / "b.bin").exists() and not (tmp_path / "pkg" / "e" / "tib.bin").exists()


def test_tree_digest_survives_names_that_are_not_utf8(tmp_path: Path) -> None:
    from ymir_conformance.workspace import tree_digest

    before = tree_digest(tmp_path)
    open(os.path.join(os.fsencode(tmp_path), b"\xff\x9b.jpg"), "w").close()  # the image may name files so
    assert tree_digest(tmp_path) != before
