"""The one guarded door for every byte the image under test wrote.

The image is hostile until proven otherwise: the suite runs as root on a stranger's image, and everything that
image left in ``/out`` (and in its ``/img-man`` files, its logs, its ``cat`` output) is read here and nowhere
else. The door:

* opens a path beneath a root the suite owns **one component at a time** (``openat`` with ``O_NOFOLLOW``): a
  symlink at *any* component, including a directory link such as ``/out/models/epoch1/host -> /etc``, is
  refused, never followed;
* opens only **regular files** (``lstat`` first, then ``O_NONBLOCK`` and ``fstat`` again): FIFOs, sockets and
  device nodes are refused without blocking;
* reads at most a **cap** per kind of file (:data:`CAPS`), and names the cap in the message when refusing;
* parses YAML with a loader that refuses **aliases** beyond :data:`YAML_MAX_ALIASES`, an expanded size beyond
  :data:`YAML_MAX_EXPANDED_NODES` (a "billion laughs" bomb) and **nesting** beyond :data:`MAX_NESTING`, and JSON
  with the same nesting bound, so no ``RecursionError`` or memory blow-up reaches the caller;
* streams logs and ``cat`` output with a cap (:func:`drain`);
* validates every **name the image chose** before the suite builds a host path from it (:func:`plain_name`,
  :func:`plain_relpath`): a name that no file name can hold (a lone surrogate such as ``"\\ud800"`` from a YAML or
  JSON escape, a NUL) is refused like any other unsafe name, never an encoder's crash;
* writes host copies with ``O_EXCL | O_NOFOLLOW`` (:func:`copy_file`), **sparse-aware** (holes stay holes,
  :func:`copy_sparse`), and refuses to copy a file over its cap or sparse beyond reason (:func:`copy_refusal`:
  what the platform's packer would read and store as data), naming its apparent and allocated size and the cap;
* shows log lines as printable text only (:func:`ymir_conformance.printable.log_line`).

Every refusal is an :class:`~ymir_conformance.errors.UnsafeOutput` whose ``problem`` completes the sentence
"<file> ...", e.g. "is a FIFO, not a regular file". The check owning the file turns it into a finding.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import UnsafeOutput
from .printable import log_line

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

CAPS: dict[str, int] = {
    # what the image writes, and the most of it the suite reads (a conformant file is far smaller)
    "monitor": 64 * KiB,  # the platform keeps 100 lines; a few KiB in practice
    "log-tail": 64 * KiB,  # failure messages and reports show only the end of the executor log
    "log-scan": 1 * MiB,  # the checks that look for error lines read at most the log's last MiB
    "result-yaml": 1 * MiB,  # result.yaml: a few KiB even with 11 stages
    "infer-result": 16 * MiB,  # infer-result.json: the suite's candidate sets are at most a few hundred images
    "mining-result": 8 * MiB,  # result.tsv: one short line per candidate
    "img-man": 1 * MiB,  # a template is a few hundred bytes
    "cat-output": 1 * MiB,  # stdout of `docker run IMG cat /img-man/...`
    "model-file": 4 * GiB,  # one stage file copied into the model package
    "model-package": 8 * GiB,  # all stage files of one training together
    "tensorboard-file": 64 * MiB,  # one event file read back for TR-14
    "asset": 64 * MiB,  # a candidate image in the (image-writable) asset cache, read back for its size
}
MAX_PATH_DEPTH = 16  # components below the root, e.g. models/<stage>/<file>
MAX_NAME_BYTES = 255
MAX_WALK_ENTRIES = 10_000
MAX_NESTING = 64  # YAML / JSON nesting; result files are 4-6 levels deep
YAML_MAX_ALIASES = 100
YAML_MAX_EXPANDED_NODES = 200_000  # nodes after expanding every alias: what str()/json.dumps would walk
# A model file "sparse beyond reason": over SPARSE_MIN_APPARENT bytes long, with less than 1/SPARSE_RATIO of them
# allocated on disk. Real weights are dense; a file of holes is a disk bomb for the platform's packer (tar.gz reads
# every apparent byte) and for every task that later extracts the model into /in/models (written dense).
SPARSE_MIN_APPARENT = 64 * MiB
SPARSE_RATIO = 8

_KIND_OF_MODE = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symlink"),
)


def human(n: int) -> str:
    for unit, size in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def what_is(mode: int) -> str:
    for test, name in _KIND_OF_MODE:
        if test(mode):
            return name
    return "not a regular file"


# --------------------------------------------------------------------------------------------------------
# Names the image chose
# --------------------------------------------------------------------------------------------------------

_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")


def name_bytes(name: str) -> bytes | None:
    """``name`` as UTF-8 (what the platform, a Python program, makes of it on disk), or None when it cannot be
    encoded: a lone surrogate such as ``"\\ud800"`` (a YAML/JSON escape) is no character at all."""
    try:
        return name.encode("utf-8")
    except UnicodeEncodeError:
        return None


def plain_name(name: object) -> str | None:
    """``name`` when it is one plain path component, safe to join onto a host directory; else None.

    Refused: non-strings, '', '.', '..', anything with '/', '\\', NUL or control characters (C0, DEL, C1:
    newlines would forge report lines, escapes drive terminals), names that cannot be encoded (lone surrogates),
    and names over 255 bytes. Never raises.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or _BAD_CHARS.search(name):
        return None
    encoded = name_bytes(name)
    if encoded is None or len(encoded) > MAX_NAME_BYTES:
        return None
    return name


def name_problem(name: str) -> str:
    """Why :func:`plain_name` refuses ``name`` (a string), completing "the name ..."; '' when it is plain."""
    if name in ("", ".", ".."):
        return f"is {name!r}, not a name"
    if "/" in name or "\\" in name:
        return "contains '/' or '\\'"
    if re.search(r"[\x00-\x1f\x7f-\x9f]", name):
        return "contains control characters (C0, DEL or C1: escape sequences, newlines)"
    encoded = name_bytes(name)
    if encoded is None:
        return ("cannot be encoded as UTF-8 (it holds a lone surrogate such as \\ud800, which no file name can "
                "hold: the platform's os.mkdir/open raise UnicodeEncodeError on it)")
    if len(encoded) > MAX_NAME_BYTES:
        return f"is {len(encoded)} bytes long, over the {MAX_NAME_BYTES} bytes a file name may have"
    return ""


def plain_relpath(path: object) -> tuple[str, ...] | None:
    """The components of a relative path made only of plain names (``a/b.pt``), or None."""
    if not isinstance(path, str) or not path or path.startswith("/"):
        return None
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if not parts or len(parts) > MAX_PATH_DEPTH or any(plain_name(p) is None for p in parts):
        return None
    return parts


def _components(rel: str | Path) -> list[str]:
    parts = [p for p in str(rel).split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafeOutput("names no file")
    if len(parts) > MAX_PATH_DEPTH:
        raise UnsafeOutput(f"is nested more than {MAX_PATH_DEPTH} directories deep")
    if ".." in parts:
        raise UnsafeOutput("climbs out of its directory with '..'")
    for part in parts:
        if "\x00" in part:
            raise UnsafeOutput("has a NUL character in its name, which no file name can hold")
        try:
            os.fsencode(part)  # a name read back from the disk may carry surrogateescape bytes; "\ud800" may not
        except UnicodeEncodeError:
            raise UnsafeOutput("has a name that cannot be encoded (a lone surrogate such as \\ud800), which no file "
                               "name can hold") from None
    return parts


# --------------------------------------------------------------------------------------------------------
# Opening beneath a root, never following a link
# --------------------------------------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _link_problem(name: str, dir_fd: int, where: str) -> UnsafeOutput:
    try:
        target = os.readlink(name, dir_fd=dir_fd)
    except OSError:
        target = "?"
    shown = target if len(target) <= 120 else target[:117] + "..."
    return UnsafeOutput(f"{where}is a symlink (to {shown!r}); the suite never follows links out of the "
                        "workspace, and the platform, which does, would read or copy a host file instead")


def open_dirs(root: Path | int, parts: list[str] | tuple[str, ...], create: bool = False) -> int:
    """An fd of ``root/parts...``, each component opened (with ``create``, made first) beneath the previous one
    with O_NOFOLLOW. ``root`` is a folder the suite owns, or an fd of one (duplicated, never closed here).

    A link at any component raises :class:`UnsafeOutput`; something that is not a directory raises
    FileNotFoundError (reading: nothing is there) or, with ``create``, :class:`UnsafeOutput` (nothing may be
    written beneath it).
    """
    fd = os.dup(root) if isinstance(root, int) else os.open(root, _DIR_FLAGS)  # never a link, even the root
    try:
        for i, name in enumerate(parts):
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                st = os.lstat(name, dir_fd=fd)
            where = "/".join(parts[: i + 1])
            if stat.S_ISLNK(st.st_mode):
                raise _link_problem(name, fd, f"its directory component {where!r} ")
            if not stat.S_ISDIR(st.st_mode):
                if create:
                    raise UnsafeOutput(f"lies beneath {where!r}, which is {what_is(st.st_mode)}, not a directory")
                raise FileNotFoundError(errno.ENOTDIR, f"{where} is not a directory")
            nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(root: Path, rel: str | Path) -> tuple[int, os.stat_result]:
    """(fd, stat) of the regular file ``root/rel``; the caller closes the fd.

    Raises FileNotFoundError when it does not exist, :class:`UnsafeOutput` when any component is a link or
    the file is not a regular file.
    """
    parts = _components(rel)
    dfd = open_dirs(root, parts[:-1])
    try:
        st = os.lstat(parts[-1], dir_fd=dfd)
        if stat.S_ISLNK(st.st_mode):
            raise _link_problem(parts[-1], dfd, "")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeOutput(f"is {what_is(st.st_mode)}, not a regular file")
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a link between lstat and open
                raise _link_problem(parts[-1], dfd, "") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UnsafeOutput(f"is {what_is(st.st_mode)}, not a regular file")
        return fd, st
    finally:
        os.close(dfd)


def lstat_beneath(root: Path, rel: str | Path) -> os.stat_result | None:
    """lstat of ``root/rel`` reached without following a link in any directory component; None if absent.

    Raises :class:`UnsafeOutput` when a directory component is a link (the final component may be anything:
    the caller looks at its mode).
    """
    parts = _components(rel)
    try:
        dfd = open_dirs(root, parts[:-1])
    except FileNotFoundError:
        return None
    try:
        return os.lstat(parts[-1], dir_fd=dfd)
    except FileNotFoundError:
        return None
    finally:
        os.close(dfd)


def _read_fd(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 * MiB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_bytes(root: Path, rel: str | Path, cap: int) -> bytes:
    """All bytes of the regular file ``root/rel`` if it holds at most ``cap`` bytes."""
    fd, st = open_regular(root, rel)
    try:
        if st.st_size > cap:
            raise UnsafeOutput(f"is {human(st.st_size)}, over the {human(cap)} this suite reads of such a file")
        data = _read_fd(fd, cap + 1)
        if len(data) > cap:
            raise UnsafeOutput(f"grew past the {human(cap)} this suite reads of such a file while being read")
        return data
    finally:
        os.close(fd)


def read_head(root: Path, rel: str | Path, cap: int) -> bytes:
    """At most the first ``cap`` bytes of the regular file ``root/rel`` (for a file sampled while it grows)."""
    fd, _ = open_regular(root, rel)
    try:
        return _read_fd(fd, cap)
    finally:
        os.close(fd)


def read_text(root: Path, rel: str | Path, cap: int) -> str:
    """:func:`read_bytes` decoded as UTF-8; undecodable bytes are refused (the platform reads UTF-8)."""
    data = read_bytes(root, rel, cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeOutput(f"is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None


def tail_lines(root: Path, rel: str | Path, n: int, cap: int = CAPS["log-tail"]) -> list[str]:
    """The last ``n`` lines of a text file, from at most its last ``cap`` bytes.

    Never raises: an absent file gives ``[]``, an unsafe one a single line saying why it was not read.
    """
    try:
        fd, st = open_regular(root, rel)
    except FileNotFoundError:
        return []
    except UnsafeOutput as exc:
        return [f"[ymir-conformance] {rel} was not read: it {exc.problem}"]
    except OSError as exc:
        return [f"[ymir-conformance] {rel} was not read: {exc.strerror}"]
    try:
        start = max(0, st.st_size - cap)
        os.lseek(fd, start, os.SEEK_SET)
        data = _read_fd(fd, cap)
    finally:
        os.close(fd)
    lines = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line is probably cut
    return [log_line(ln) for ln in lines[-n:]]  # colours removed, every other escape shown, capped


def walk(root: Path, rel: str | Path = "", max_entries: int = MAX_WALK_ENTRIES) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry beneath ``root/rel``, depth first, links listed but never entered.

    Stops quietly after ``max_entries`` entries or :data:`MAX_PATH_DEPTH` levels.
    """
    start = _components(rel) if str(rel) not in ("", ".") else []
    try:
        top = open_dirs(root, start)
    except (FileNotFoundError, UnsafeOutput, NotADirectoryError):
        return
    count = 0
    stack: list[tuple[int, str, int]] = [(top, "/".join(start), len(start))]
    try:
        while stack:
            dfd, prefix, depth = stack.pop()
            try:
                names = sorted(os.listdir(dfd))
                for name in names:
                    if count >= max_entries:
                        return
                    try:
                        st = os.lstat(name, dir_fd=dfd)
                    except OSError:
                        continue
                    count += 1
                    path = f"{prefix}/{name}" if prefix else name
                    yield path, st
                    if stat.S_ISDIR(st.st_mode) and depth + 1 < MAX_PATH_DEPTH:
                        try:
                            stack.append((os.open(name, _DIR_FLAGS, dir_fd=dfd), path, depth + 1))
                        except OSError:
                            continue
            finally:
                os.close(dfd)
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)


# --------------------------------------------------------------------------------------------------------
# Writing host copies from image-chosen names
# --------------------------------------------------------------------------------------------------------


def allocated(st: os.stat_result) -> int:
    """Bytes a file occupies on disk (``st_blocks`` counts 512-byte units whatever the block size)."""
    return int(getattr(st, "st_blocks", 0)) * 512


def sizes(st: os.stat_result) -> str:
    """'1 TiB apparent, 0 bytes allocated on disk'."""
    return f"{human(st.st_size)} apparent, {human(allocated(st))} allocated on disk"


def copy_refusal(st: os.stat_result, cap: int, what: str = "copies of a model file") -> str:
    """Why the suite will not copy a regular file with stat ``st`` under ``cap`` (completing "<file> ..."), or ''.

    Over the cap counts the *apparent* size (what a reader gets, and what the platform's packer stores); "sparse
    beyond reason" is a file over :data:`SPARSE_MIN_APPARENT` with less than 1/:data:`SPARSE_RATIO` of it
    allocated: a hole-filled disk bomb, not model weights.
    """
    if st.st_size > cap:
        return f"is {human(st.st_size)} ({sizes(st)}), over the {human(cap)} this suite {what}"
    if st.st_size > SPARSE_MIN_APPARENT and allocated(st) * SPARSE_RATIO < st.st_size:
        return (f"is sparse beyond reason ({sizes(st)}): less than 1/{SPARSE_RATIO} of a file over "
                f"{human(SPARSE_MIN_APPARENT)} holds data, so it is holes, not weights")
    return ""


def copy_file(root: Path, rel: str | Path, dest: Path, cap: int = CAPS["model-file"]) -> int:
    """Copy the regular file ``root/rel`` to ``dest`` (which must not exist), sparse-aware; returns its apparent
    size (what counts against a cap: the bytes a reader, and the platform's packer, get).

    ``dest`` must be built by the caller from names checked with :func:`plain_name`/:func:`plain_relpath`;
    it is created with ``O_EXCL | O_NOFOLLOW`` so that nothing already there is overwritten or followed. A file
    :func:`copy_refusal` refuses (over ``cap``, sparse beyond reason) raises :class:`UnsafeOutput` naming its
    apparent and allocated size and the cap, before anything is written.
    """
    fd, st = open_regular(root, rel)
    try:
        problem = copy_refusal(st, cap)
        if problem:
            raise UnsafeOutput(problem)
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            return copy_sparse(fd, out, cap, "copies of a model file")
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _data_extents(fd: int, start: int) -> Iterator[tuple[int, int]]:
    """(offset, end) of every data extent of ``fd`` from ``start`` (SEEK_DATA/SEEK_HOLE); one extent to the end
    of the file where the filesystem cannot tell (EINVAL)."""
    pos = start
    while True:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after pos: the rest is a hole (or pos is the end)
                return
            if exc.errno == errno.EINVAL and pos == start:  # no SEEK_DATA here: treat it all as data
                yield start, os.fstat(fd).st_size
                return
            raise
        hole = os.lseek(fd, data, os.SEEK_HOLE)  # there is always an implicit hole at the end of the file
        yield data, hole
        pos = hole


def copy_sparse(src_fd: int, out_fd: int, cap: int, what: str) -> int:
    """Copy ``src_fd`` into the empty ``out_fd`` extent by extent: the data extents are written at their offsets,
    holes are skipped (they stay holes), and the result gets the source's apparent size. Returns that size; raises
    :class:`UnsafeOutput` ("grew past the <cap> this suite <what>") when the source extends past ``cap``."""
    end = 0
    for offset, stop in _data_extents(src_fd, 0):
        if stop > cap:
            raise UnsafeOutput(f"grew past the {human(cap)} this suite {what}")
        pos = offset
        while pos < stop:
            chunk = os.pread(src_fd, min(4 * MiB, stop - pos), pos)
            if not chunk:
                break  # shrank while being copied
            written = 0
            while written < len(chunk):
                written += os.pwrite(out_fd, chunk[written:], pos + written)
            pos += len(chunk)
        end = max(end, pos)
    size = os.fstat(src_fd).st_size
    if size > cap:
        raise UnsafeOutput(f"grew past the {human(cap)} this suite {what}")
    if size > end:  # a trailing hole: the apparent size without a block
        os.ftruncate(out_fd, size)
    return max(size, end)


def clone_file(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Copy a file the suite itself wrote (a model package, the model cache), sparse-aware: holes stay holes.
    Signature of :func:`shutil.copy2` for ``shutil.copytree(copy_function=...)``; returns ``dest``."""
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(src_fd)
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            copy_sparse(src_fd, out, 1 << 62, "copies of its own files")
        finally:
            os.close(out)
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(src_fd)
    return os.fspath(dest)


def pour(read: Callable[[int], bytes], out_fd: int, cap: int, what: str) -> int:
    """Copy what ``read(n)`` yields into ``out_fd`` in 4 MiB pieces until it is exhausted; returns the bytes
    copied, or raises :class:`UnsafeOutput` ("grew past the <cap> this suite <what>") past ``cap``."""
    copied = 0
    while True:
        chunk = read(min(4 * MiB, cap - copied + 1))
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > cap:
            raise UnsafeOutput(f"grew past the {human(cap)} this suite {what}")
        os.write(out_fd, chunk)


# --------------------------------------------------------------------------------------------------------
# Streams (container logs, `cat` output)
# --------------------------------------------------------------------------------------------------------


def drain(chunks: Iterable[bytes], cap: int, stop: bool = False) -> tuple[bytes, int]:
    """(the first ``cap`` bytes of a stream, how many bytes beyond them were seen).

    The rest is read and discarded (so that the stream's connection can be reused), unless ``stop``: then
    reading stops at the first byte past the cap, and the caller must close the stream or kill its source.
    """
    kept = bytearray()
    dropped = 0
    for chunk in chunks:
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
            dropped += max(0, len(chunk) - room)
        else:
            dropped += len(chunk)
        if stop and dropped:
            break
    return bytes(kept), dropped


# --------------------------------------------------------------------------------------------------------
# Bounded parsers
# --------------------------------------------------------------------------------------------------------


def flow_depth(text: str) -> int:
    """The deepest nesting of [ ] and { } in ``text`` (strings are not skipped: an over-estimate)."""
    depth = deepest = 0
    for ch in re.sub(r"[^\[\]{}]+", "", text):
        depth = depth + 1 if ch in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and nesting while composing, before any Python object is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > YAML_MAX_ALIASES:
                raise UnsafeOutput(f"uses more than {YAML_MAX_ALIASES} YAML aliases (*name): refused as a "
                                   "possible alias bomb")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise UnsafeOutput(f"is nested more than {MAX_NESTING} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """How many nodes the document has once every alias is expanded (what str() or json.dumps would walk)."""
    memo: dict[int, int] = {}
    busy: set[int] = set()

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        if key in busy:
            raise UnsafeOutput("holds a recursive YAML alias (a structure that contains itself)")
        busy.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            for child in n.value:
                total += size(child)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
        busy.discard(key)
        if total > limit:
            raise UnsafeOutput(f"expands to more than {limit} YAML nodes through its aliases: refused as an "
                               "alias bomb")
        memo[key] = total
        return total

    return size(node)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounds; raises :class:`UnsafeOutput` (bounds) or ``yaml.YAMLError`` (syntax)."""
    if flow_depth(text) > MAX_NESTING:
        raise UnsafeOutput(f"is nested more than {MAX_NESTING} levels deep")
    loader = _BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise UnsafeOutput("is nested too deeply to parse") from None
        if node is None:
            return None
        _expanded_size(node, YAML_MAX_EXPANDED_NODES)
        try:
            return loader.construct_document(node)
        except RecursionError:
            raise UnsafeOutput("is nested too deeply to parse") from None
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a date like 2001-13-01
            raise yaml.YAMLError(f"a value PyYAML cannot construct: {exc}") from None
    finally:
        loader.dispose()


def _json_depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d > limit:
                raise UnsafeOutput(f"is nested more than {limit} levels deep")
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))


def load_json(text: str) -> Any:
    """``json.loads`` with a nesting bound; raises :class:`UnsafeOutput` (bounds) or ``ValueError`` (syntax)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnsafeOutput(f"is nested more than {MAX_NESTING} levels deep") from None
    _json_depth(value, MAX_NESTING)
    return value


__all__ = ["CAPS", "clone_file", "copy_file", "copy_refusal", "copy_sparse", "drain", "name_problem", "open_dirs", "load_json", "load_yaml", "lstat_beneath", "open_regular", "plain_name",
           "plain_relpath", "read_bytes", "read_head", "read_text", "tail_lines", "walk"]
