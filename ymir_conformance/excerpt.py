"""The real error in an executor log, found wherever it was printed, shown before the last lines.

Deep-learning executors run their training in a subprocess (``start.py`` -> ``train.py``): the decisive
``RuntimeError`` is printed long before the end, then the wrapper's own ``subprocess.CalledProcessError``
traceback, then cleanup noise in colour. The platform shows the user the last 5 lines only; the suite shows the
error first:

* :class:`Scanner` reads log lines one at a time (bounded state: the last few tracebacks, error lines and tail
  lines), so a log of any size is judged from a bounded window (:data:`WINDOW`, the log's last MiBs);
* a traceback is ``Traceback (most recent call last):`` (after any constant or timestamp-like prefix the wrapper
  puts before a child's lines), its frames (indented), and its exception line (``ValueError: ...``,
  ``cv2.error: ...``); lines of other output interleaved with it are skipped;
* the error shown is the last exception, except that a wrapper's ``CalledProcessError`` gives way to the last
  exception printed before it (the subprocess's original), which is then named as the cause;
* ``Error:``/``error:``/``fatal:`` lines, ``ERROR``/``FATAL``/``CRITICAL`` log levels, and platform-style error
  codes (``error_code: 300002``, ``[300002 RC_EXEC_DATASET_ERROR]``, a monitor record with state 4 and its code)
  are collected too.

Every line is shown without ANSI colours and with anything else unsafe escaped (:mod:`printable`).
"""
from __future__ import annotations

import codecs
import os
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .printable import log_line, strip_ansi

KiB = 1024
MiB = 1024 * KiB
WINDOW = 4 * MiB  # the part of the log scanned: its last 4 MiB
CHUNK = 256 * KiB
MAX_LINE = 16 * KiB  # longer lines are scanned and shown cut
TAIL = 15  # last lines kept (what -v shows)
SHORT_TAIL = 5  # last lines shown by default (the platform's task message is its last 5 lines)
KEEP_TRACEBACKS = 16
KEEP_ERRORS = 8
FRAME_HEAD = 4  # lines kept from the start of a traceback's frames ...
FRAME_TAIL = 24  # ... and from its end
NOISE_MAX = 200  # unrelated lines tolerated inside a traceback before it is given up
MAX_OPEN = 4  # tracebacks open at once (a child's and its wrapper's may interleave)
SHOW = 300  # characters of one line shown

WRAPPERS = frozenset({"CalledProcessError"})  # exceptions that only say a wrapped process failed

_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("During handling of the above exception, another exception occurred:",
            "The above exception was the direct cause of the following exception:")
# an exception line: a (dotted) name, then ': message' or nothing. Undotted names must look like exceptions.
_EXC = re.compile(r"(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::(?:\s(?P<msg>.*))?)?$")
_EXC_SUFFIX = re.compile(r"(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault|Iteration|Timeout)$")
_ERROR_WORDS = ("error", "fatal", "critical", "code", "rc_", "\t4\t")  # every line _ERROR_LINE or _CODE_LINE
# matches holds one of these (lowercased)
_ERROR_LINE = re.compile(r"\b(?:error|Error|fatal|Fatal)\s*:|\b(?:ERROR|FATAL|CRITICAL)\b|[a-z]Error:\s")
_CODE_LINE = re.compile(
    r"\b(?:error|return|state|exit)[_ ]?code\b\W{0,3}(?:3\d{5}|1[5-6]\d{4})\b"  # error_code: 300002
    r"|\[(?:3\d{5}|1[5-6]\d{4})\s+RC_\w+\]"  # [300002 RC_EXEC_DATASET_ERROR]
    r"|\bRC_(?:EXEC|CMD)_\w*ERROR\b"
    r"|^\S+\t\d+(?:\.\d*)?\t[\d.]+\t4\t\d+")  # a monitor record: state 4 (ERROR) and its code


def exception_name(line: str) -> str | None:
    """The exception's (dotted) name when ``line`` is a traceback's exception line, else None."""
    m = _EXC.match(line.rstrip())
    if m is None:
        return None
    name = m.group("name")
    if "." in name or _EXC_SUFFIX.search(name) or name in ("KeyboardInterrupt", "StopIteration"):
        return name
    return None


def _prefix_pattern(prefix: str) -> re.Pattern[str] | None:
    """What precedes every line of a traceback whose first line had ``prefix`` before 'Traceback' (digits
    may change from line to line: a timestamp)."""
    if not prefix.strip():
        return None
    return re.compile("".join(r"\d+" if part.isdigit() else re.escape(part)
                              for part in re.split(r"(\d+)", prefix) if part))


@dataclass
class Traceback:
    """One Python traceback as printed: where it starts (line index in the scan) and its exception line."""

    start: int
    head: list[str] = field(default_factory=list)  # the first FRAME_HEAD frame lines ...
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=FRAME_TAIL))  # ... and the last of the others
    frames_seen: int = 0
    exception: str = ""  # e.g. "ValueError: invalid literal for int() with base 10: ''"
    name: str = ""  # e.g. "ValueError"
    end: int = -1  # line index of the exception line
    chained: str = ""  # the marker line that tied it to the traceback before it, if any
    prefix: re.Pattern[str] | None = field(default=None, repr=False)
    indent: str = ""  # leading text of the 'Traceback' line that is part of every line (e.g. '  | ')
    noise: int = 0

    @property
    def is_wrapper(self) -> bool:
        return self.name.rsplit(".", 1)[-1] in WRAPPERS

    def frame_lines(self, frames: int | None = None) -> list[str]:
        """The frame lines, shortened to the last ``frames`` frames (a frame starts with 'File "...') or to
        what was kept (its first and last lines); an omission is said in one line where it is."""
        omitted = self.frames_seen - len(self.head) - len(self.tail)
        lines = self.head + ([f"  ... {omitted} line(s) of the traceback not shown ..."] if omitted > 0 else []) \
            + list(self.tail)
        if frames is not None:
            starts = [i for i, ln in enumerate(lines) if ln.lstrip().startswith('File "')]
            if len(starts) > frames:
                cut = starts[-frames]
                hidden = sum(1 for ln in lines[:cut] if not ln.startswith("  ... ")) + max(omitted, 0)
                lines = [f"  ... {hidden} line(s) of the traceback not shown ..."] + lines[cut:]
        return lines


@dataclass(frozen=True)
class ErrorLine:
    index: int  # line index in the scan
    text: str
    code: bool  # a platform-style error code line


@dataclass
class Excerpt:
    """What a scan found: the decisive error, its traceback, other error lines, and the last lines."""

    lines_scanned: int = 0
    bytes_scanned: int = 0
    log_bytes: int = 0
    problem: str = ""  # why the log could not be read ('' when it was)
    tracebacks: list[Traceback] = field(default_factory=list)  # completed, oldest first (the last few)
    errors: list[ErrorLine] = field(default_factory=list)  # outside tracebacks, oldest first (the last few)
    tail: list[str] = field(default_factory=list)

    @property
    def window_cut(self) -> bool:
        """Whether the scan began after the start of the log (it was larger than the window)."""
        return self.log_bytes > self.bytes_scanned

    def primary(self) -> tuple[Traceback | None, list[Traceback]]:
        """The traceback to show and the tracebacks that followed it as consequences (a wrapper's
        ``CalledProcessError``, exceptions raised while handling it). None when the log holds no traceback."""
        if not self.tracebacks:
            return None, []
        tbs = self.tracebacks

        def chain_root(i: int) -> int:  # the first traceback of the chain ('During handling ...') holding i
            while i > 0 and tbs[i].chained:
                i -= 1
            return i

        last = len(tbs) - 1
        root = chain_root(last)
        if tbs[root].is_wrapper:  # a wrapped process failed: its own error was printed before
            before = [j for j in range(root) if not tbs[j].is_wrapper]
            if before:
                root = chain_root(before[-1])
        return tbs[root], tbs[root + 1:]

    @property
    def error(self) -> str:
        """The decisive line: the original exception, else the last error-code line, else the last error line
        ('' when the log shows none)."""
        tb, _ = self.primary()
        if tb is not None:
            return tb.exception
        codes = [e for e in self.errors if e.code]
        if codes:
            return codes[-1].text
        return self.errors[-1].text if self.errors else ""

    @property
    def found(self) -> bool:
        return bool(self.error)

    def before_end(self, index: int) -> int:
        """How many lines the log has after line ``index`` of the scan."""
        return self.lines_scanned - index - 1

    def render(self, verbose: bool = False) -> list[str]:
        """The error part (empty when nothing was found): the decisive error first, its traceback shortened,
        what followed it, then other error lines; every line rendered safe (:func:`printable.log_line`)."""
        if self.problem or not self.found:
            return []
        out: list[str] = []
        tb, after = self.primary()
        if tb is not None:
            out.append(f"error in the log ({self.before_end(tb.end)} line(s) before its end): {_show(tb.exception)}")
            out.append(f"  {_TRACEBACK}")
            out += [f"  {_show(ln)}" for ln in tb.frame_lines(None if verbose else 3)]
            out.append(f"  {_show(tb.exception)}")
            for t in after[-3:]:
                whose = "the wrapper's " if t.is_wrapper else ""
                out.append(f"  followed by {whose}{_show(t.exception)}")
            shown = {tb.exception} | {t.exception for t in after}
        else:
            last = self.error
            idx = next(e.index for e in reversed(self.errors) if e.text == last)
            out.append(f"error in the log ({self.before_end(idx)} line(s) before its end): {_show(last)}")
            shown = {last}
        rest = [e for e in self.errors if e.text not in shown]
        if rest:
            keep = rest if verbose else rest[-3:]
            out.append(f"  other error lines{'' if len(keep) == len(rest) else f' (last {len(keep)} of {len(rest)})'}:")
            out += [f"    {_show(e.text)}" for e in keep]
        return out

    def to_json(self) -> dict[str, object]:
        """For report.json (``runs[].error_excerpt``)."""
        tb, after = self.primary()
        return {
            "error": log_line(self.error, SHOW) if self.error else None,
            "exception": log_line(tb.exception, SHOW) if tb is not None else None,
            "followed_by": [log_line(t.exception, SHOW) for t in after],
            "lines": self.render(verbose=True),
            "lines_scanned": self.lines_scanned, "bytes_scanned": self.bytes_scanned,
            "log_bytes": self.log_bytes, "problem": self.problem or None,
        }


def _body(tb: Traceback, line: str) -> str | None:
    """``line`` without the traceback's per-line prefix; None when it lacks that prefix."""
    if tb.prefix is not None:
        m = tb.prefix.match(line)
        return None if m is None else line[m.end():]
    if tb.indent:
        return line[len(tb.indent):] if line.startswith(tb.indent) else None
    return line


def _show(line: str) -> str:
    return log_line(line, SHOW)


class Scanner:
    """Feed log lines (raw: colours are stripped here); :meth:`result` tells what was found. Bounded memory."""

    def __init__(self, tail: int = TAIL) -> None:
        self.n = 0
        self.done: deque[Traceback] = deque(maxlen=KEEP_TRACEBACKS)
        self.errors: deque[ErrorLine] = deque(maxlen=KEEP_ERRORS)
        self.tail: deque[str] = deque(maxlen=tail)
        self.open: list[Traceback] = []  # started, no exception line yet (two may interleave), newest last
        self.marker = ""  # a chaining marker seen after the last completed traceback

    def feed(self, raw: str) -> None:
        index = self.n
        self.n += 1
        line = raw if raw.isascii() and "\x1b" not in raw else strip_ansi(raw)  # (C1 sequences are not ASCII)
        if "\r" in line:  # progress bars redraw with CR: the terminal shows the last non-blank part
            parts = [p for p in line.split("\r") if p.strip()]
            line = parts[-1] if parts else ""
        line = line.rstrip("\n")
        self.tail.append(line)
        pos = line.find(_TRACEBACK)
        if pos >= 0:
            self._start(index, line[:pos])
            return
        if self.open and self._in_traceback(index, line):
            return
        stripped = line.strip()
        if stripped.endswith(_CHAINED):
            self.marker = stripped
            return
        if stripped:
            self.marker = ""
        low = line.lower()
        if not any(word in low for word in _ERROR_WORDS):  # cheap: most lines are progress
            return
        code = bool(_CODE_LINE.search(line))
        if code or _ERROR_LINE.search(line):
            text = line.strip()[:MAX_LINE]
            if not self.errors or self.errors[-1].text != text:
                self.errors.append(ErrorLine(index, text, code))

    def _start(self, index: int, prefix: str) -> None:
        indent = prefix if not prefix.strip(" |+") else ""  # exception groups print '  | ' before each line
        self.open.append(Traceback(start=index, prefix=None if indent else _prefix_pattern(prefix), indent=indent,
                                   chained=self.marker))
        self.marker = ""
        del self.open[:-MAX_OPEN]  # the oldest unfinished ones are given up

    def _in_traceback(self, index: int, line: str) -> bool:
        """Consume ``line`` as part of an open traceback (the newest whose prefix it has); False when it is part
        of none (then it is scanned as an ordinary line)."""
        for tb in reversed(self.open):
            body = _body(tb, line)
            if body is None:
                continue
            if not body.strip():
                return True
            if body[0] in " \t":  # a frame: 'File "...", line N, in f', its code, '^^^^' markers
                tb.frames_seen += 1
                text = body[:MAX_LINE]
                if len(tb.head) < FRAME_HEAD:
                    tb.head.append(text)
                else:
                    tb.tail.append(text)
                return True
            name = exception_name(body)
            if name is not None:
                tb.exception = body.strip()[:MAX_LINE]
                tb.name = name
                tb.end = index
                self.done.append(tb)
                self.open.remove(tb)
                return True
            break  # a line with this traceback's prefix that is neither a frame nor its exception: noise
        for tb in list(self.open):
            tb.noise += 1
            if tb.noise > NOISE_MAX:
                self.open.remove(tb)
        return False

    def result(self) -> Excerpt:
        return Excerpt(lines_scanned=self.n, tracebacks=list(self.done), errors=list(self.errors),
                       tail=list(self.tail))


def scan(lines: Iterable[str], tail: int = TAIL) -> Excerpt:
    """The excerpt of a log given as lines (pure; for tests and for text already read)."""
    s = Scanner(tail)
    for line in lines:
        s.feed(line)
    return s.result()


def read_excerpt(out_dir: Path, rel: str = "ymir-executor-out.log", window: int = WINDOW,
                 tail: int = TAIL) -> Excerpt:
    """Scan the last ``window`` bytes of ``out_dir/rel`` (the executor log), streaming, through the guarded
    opener (no link followed, regular files only). Never raises: an absent log gives an empty excerpt, an
    unsafe one an excerpt whose ``problem`` says why it was not read."""
    from . import guard
    from .errors import UnsafeOutput

    try:
        fd, st = guard.open_regular(out_dir, rel)
    except FileNotFoundError:
        return Excerpt()
    except UnsafeOutput as exc:
        return Excerpt(problem=f"/out/{rel} was not read: it {exc.problem}")
    except OSError as exc:
        return Excerpt(problem=f"/out/{rel} was not read: {exc.strerror or exc}")
    key = (str(out_dir), rel, window, tail, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _CACHE.get(key)
    if cached is not None:  # a finished run's log: the failure text, V1 and report.json all ask for it
        os.close(fd)
        return cached
    excerpt = _scan_fd(fd, st, window, tail)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = excerpt
    return excerpt


_CACHE: dict[tuple[object, ...], Excerpt] = {}
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()


def _scan_fd(fd: int, st: os.stat_result, window: int, tail: int) -> Excerpt:
    """Scan the open log ``fd`` (closed here) as :func:`read_excerpt` describes."""
    scanner = Scanner(tail)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    read = 0
    try:
        start = max(0, st.st_size - window)
        os.lseek(fd, start, os.SEEK_SET)
        pending = ""
        skip_first = start > 0  # the first line of a window that starts mid-file is probably cut
        while read < window:
            chunk = os.read(fd, min(CHUNK, window - read))
            if not chunk:
                break
            read += len(chunk)
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                if skip_first:
                    skip_first = False
                    continue
                scanner.feed(line[:MAX_LINE])
            if len(pending) > MAX_LINE:  # one endless line: scan its start, drop the rest up to its newline
                if not skip_first:
                    scanner.feed(pending[:MAX_LINE])
                skip_first = True
                pending = ""
        pending += decoder.decode(b"", final=True)
        if pending and not skip_first:
            scanner.feed(pending[:MAX_LINE])
    finally:
        os.close(fd)
    result = scanner.result()
    result.bytes_scanned = read
    result.log_bytes = st.st_size
    return result


__all__ = ["Excerpt", "Scanner", "Traceback", "WINDOW", "exception_name", "read_excerpt", "scan"]
