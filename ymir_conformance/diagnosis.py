"""Diagnosis by evidence: what a failed run's log says about its cause, and at most one retry that tests it.

Pure functions over a finished run (its exit, its log lines, its duration): no Docker, no files. The session
(:mod:`ymir_conformance.session`) executes the decision; the checks (LC-07, LC-09, LC-10) read the evidence.

``--ymir-diagnose`` (ini ``ymir_diagnose``):

* ``auto`` (default): a failed run is retried only when its log shows evidence for a cause a retry can test:

  - a permission error on a file the image expects to own (``PermissionError``, ``Permission denied``,
    ``EACCES`` on /out, /tmp, a home or cache directory, the image's own files; not /in, which is read-only on
    the platform (LC-03), nor /dev, /proc, /sys) or ``getpwuid(): uid not found``: one retry as root (LC-09);
  - an empty ``gpu_id`` parsed as a number or a device (``int('')``, ``invalid literal for int() with base 10:
    ''``, ``Invalid device string: 'cuda:'``, ``invalid device ordinal``, a ``gpu_id`` line with an error), in
    CPU mode: one retry with config.yaml ``gpu_id: '0'`` and still no device (LC-07).

  Network failures (name resolution, an unreachable network, refused connections) are diagnosed from the log
  alone (LC-10, naming the URL the image tried) and never retried. At most one retry per run, and none for a
  run that took longer than :data:`RETRY_MAX_S` (a retry of a two-hour training costs two hours).
* ``off``: no retry; LC-10 is still read from the log.
* ``all``: the exhaustive retries (as root; on an internal Docker network with no route anywhere; with
  ``gpu_id: '0'``), whatever the log says and however long the run took. A networked retry is never the judged
  run: when it works, the failed run stays judged (V1) and LC-10 is named.

Every retry runs under exactly the containment of the first run (limits, capabilities, no network).
"""
from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .printable import CUT_MARKER, strip_ansi
from .printable import printable as show

MODES = ("off", "auto", "all")
DEFAULT_MODE = "auto"
RETRY_MAX_S = 120.0  # auto: a run that took longer than this is not retried (its evidence is still reported)
SCAN_LINES = 400  # the log lines (from the end) searched for evidence: a traceback and the noise after it
SHOWN_CHARS = 160  # evidence quoted in notes and findings, at most this many characters


class Cause(enum.StrEnum):
    """A cause a failed run's log can show, with the rule it names."""

    PERMISSION = "permission"  # LC-09: works only as root
    GPU_ID = "gpu-id"  # LC-07: cannot handle an empty gpu_id (CPU mode)
    NETWORK = "network"  # LC-10: needs the network

    @property
    def rule(self) -> str:
        return {"permission": "LC-09", "gpu-id": "LC-07", "network": "LC-10"}[self.value]


class RetryKind(enum.StrEnum):
    ROOT = "root"  # --user 0:0, same containment otherwise
    GPU_ID = "gpu-id"  # config.yaml gpu_id '0', still no device request
    NETWORK = "network"  # an internal Docker network (--ymir-diagnose=all only)

    @property
    def rule(self) -> str:
        return {"root": "LC-09", "gpu-id": "LC-07", "network": "LC-10"}[self.value]


@dataclass(frozen=True)
class Evidence:
    """One log line that shows a cause: ``subject`` is what it names (a path, a URL, the gpu_id value)."""

    cause: Cause
    line_no: int  # 1-based, counted in the lines given to :func:`find_evidence`
    line: str  # the line, stripped and cut to SHOWN_CHARS
    subject: str = ""
    what: str = ""  # the kind of failure, read from the whole line: 'PermissionError on', 'a name-resolution ...'

    @property
    def summary(self) -> str:
        """'PermissionError on /out/x', 'an unreachable network while fetching http://...'."""
        return self.line if not self.subject else f"{self.what or _what(self.cause, self.line)} {self.subject}"


@dataclass(frozen=True)
class Retry:
    """One retry to run, and why."""

    kind: RetryKind
    reason: str  # "log shows PermissionError on /out/x" / "--ymir-diagnose=all"

    @property
    def rule(self) -> str:
        return self.kind.rule


@dataclass(frozen=True)
class Decision:
    """What to do about one failed run: the retries to run in order (``auto``: at most one), the network
    evidence read from the log (LC-10, never retried under ``auto``), and why nothing was retried."""

    retries: tuple[Retry, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    network: Evidence | None = None
    not_retried: str = ""  # why no retry ran ('' when one did, or when the run succeeded)


# -- the evidence table ---------------------------------------------------------------------------------------

_PERMISSION = re.compile(r"PermissionError|Permission denied|\bEACCES\b|getpwuid\(\): uid not found",
                         re.IGNORECASE)
_QUOTED = re.compile(r"'([^'\n]+)'|\"([^\"\n]+)\"")
_BARE_PATH = re.compile(r"(?<![\w:/.-])/[^\s'\":,;)\]]+")
# a path root cannot help with: /in is read-only on the platform (LC-03); devices are the GPU rules' business
_NOT_OWNED = re.compile(r"^/(?:in|dev|proc|sys)(?:/|$)")
_GPU_ID = [
    re.compile(r"invalid literal for int\(\) with base 10: (?:''|\"\")"),
    re.compile(r"\bint\((?:''|\"\")\)"),
    re.compile(r"Invalid device string: ['\"]?cuda:['\"]?", re.IGNORECASE),
    re.compile(r"invalid device ordinal", re.IGNORECASE),
    re.compile(r"\b(?:gpu_ids?|CUDA_VISIBLE_DEVICES)\b.*\b(?:ValueError|IndexError|TypeError|KeyError|invalid|"
               r"error|cannot|can't)\b", re.IGNORECASE),
    re.compile(r"\b(?:ValueError|IndexError|TypeError|KeyError)\b.*\bgpu_ids?\b", re.IGNORECASE),
]
_NETWORK = [
    re.compile(r"Temporary failure in name resolution|Name or service not known|nodename nor servname|"
               r"getaddrinfo (?:failed|ENOTFOUND|EAI_AGAIN)|Could not resolve host|NameResolutionError|"
               r"Failed to resolve|No address associated with hostname|\[Errno -[23]\]", re.IGNORECASE),
    re.compile(r"Network is unreachable|\[Errno 101\]|ENETUNREACH|No route to host|\[Errno 113\]|EHOSTUNREACH",
               re.IGNORECASE),
    re.compile(r"Connection refused|\[Errno 111\]|ECONNREFUSED|Failed to establish a new connection|"
               r"urlopen error|MaxRetryError|ConnectionError: HTTPS?ConnectionPool|ConnectTimeout|"
               r"Connection timed out|Could not connect to", re.IGNORECASE),
]
_URL = re.compile(r"\b(?:https?|ftp|s3|git)://[^\s'\"<>()\[\]{},]+", re.IGNORECASE)
_HOST_PORT = re.compile(r"host=['\"](?P<host>[^'\"]+)['\"],\s*port=(?P<port>\d+)")
_LOOPBACK = re.compile(r"\b(?:localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0)\b")
def printable(text: str, limit: int = SHOWN_CHARS) -> str:
    """A log excerpt safe to print (printable.py: ANSI/OSC sequences removed, other controls and lone surrogates
    shown escaped), at most ``limit`` characters with its cut marker."""
    return show(strip_ansi(text).strip(), limit=limit - len(CUT_MARKER))


def _permission(line: str) -> Evidence | None:
    if not _PERMISSION.search(line):
        return None
    quoted = [a or b for a, b in _QUOTED.findall(line)]
    path = next((q for q in quoted if "/" in q or "." in q), "")
    if not path:
        m = _BARE_PATH.search(line)
        path = m.group(0) if m else ""
    if path and _NOT_OWNED.match(path):
        return None  # /in, /dev, ...: running as root is not the fix
    return Evidence(Cause.PERMISSION, 0, printable(line), printable(path, 120) if path else "")


def _gpu_id(line: str) -> Evidence | None:
    for rx in _GPU_ID:
        if rx.search(line):
            return Evidence(Cause.GPU_ID, 0, printable(line), "")
    return None


def _network(line: str) -> Evidence | None:
    for rx in _NETWORK:
        m = rx.search(line)
        if m is None:
            continue
        if rx is _NETWORK[2] and _LOOPBACK.search(line) and not _URL.search(line.replace("localhost", "")):
            return None  # a refused connection to the image's own local server is not the network's
        return Evidence(Cause.NETWORK, 0, printable(line), "")
    return None


def tried_url(lines: Sequence[str], upto: int) -> str:
    """The URL (or host:port) the image tried: the last one on or before line ``upto`` (1-based), else the
    first one after it; '' when the log names none."""
    def found(line: str) -> str:
        urls = [str(u).rstrip(".:") for u in _URL.findall(line)]
        if urls:
            return urls[-1]
        m = _HOST_PORT.search(line)
        return f"{m.group('host')}:{m.group('port')}" if m is not None else ""

    for line in reversed(lines[:upto]):
        url = found(line)
        if url:
            return printable(url, 200)
    for line in lines[upto:]:
        url = found(line)
        if url:
            return printable(url, 200)
    return ""


def find_evidence(lines: Sequence[str]) -> list[Evidence]:
    """Every line of the last :data:`SCAN_LINES` of ``lines`` that shows a cause, in log order (line numbers
    count from the first line given). A network line names the URL the image tried as its subject."""
    start = max(0, len(lines) - SCAN_LINES)
    out: list[Evidence] = []
    for i in range(start, len(lines)):
        line = lines[i]
        if len(line) > 4000:
            line = line[:2000] + line[-2000:]  # a progress bar of a whole epoch on one line
        for probe in (_permission, _gpu_id, _network):
            ev = probe(line)
            if ev is None:
                continue
            subject = tried_url(lines, i + 1) if ev.cause is Cause.NETWORK else ev.subject
            out.append(Evidence(ev.cause, i + 1, ev.line, subject, _what(ev.cause, line)))
            break
    return out


def _what(cause: Cause, line: str) -> str:
    """What kind of failure a whole log line shows, as the words before its subject."""
    if cause is Cause.PERMISSION:
        if "getpwuid" in line:
            return "getpwuid() failing for the uid"
        name = next((w for w in ("PermissionError", "EACCES") if w in line), "Permission denied")
        return f"{name} on"
    if cause is Cause.NETWORK:
        for rx, name in ((_NETWORK[0], "a name-resolution failure"), (_NETWORK[1], "an unreachable network"),
                         (_NETWORK[2], "a failed connection")):
            if rx.search(line):
                return f"{name} while fetching"
    return "an error on"


def describe(ev: Evidence) -> str:
    """'PermissionError on /out/x' / 'a name-resolution failure while fetching https://...' / the line."""
    if ev.cause is Cause.PERMISSION and ev.what.startswith("getpwuid"):
        return "getpwuid() failing for the uid (no passwd entry)"
    if ev.cause is Cause.GPU_ID:
        return repr(ev.line) if len(ev.line) < 100 else repr(ev.line[:97] + "...")
    return ev.summary if ev.subject else repr(ev.line)


def network_evidence(lines: Sequence[str]) -> Evidence | None:
    """The last line that shows a network failure, with the URL the image tried (LC-10 from the log)."""
    found = [ev for ev in find_evidence(lines) if ev.cause is Cause.NETWORK]
    return found[-1] if found else None


def decide(mode: str, *, exit_code: int | None, timed_out: bool, hit_limit: bool, duration_s: float,
           log_lines: Sequence[str], user_is_root: bool, cpu_mode: bool, had_network: bool,
           clean_no_gpu: bool = False) -> Decision:
    """The retries for one finished run (``mode``: off | auto | all).

    No retry for a run that succeeded, timed out, hit one of the suite's limits (a retry would repeat its fork
    bomb or memory hog) or has no exit code. ``clean_no_gpu``: it failed cleanly for want of a GPU (monitor
    state 4, 300102), as LC-07 allows: no gpu_id retry.
    """
    if mode not in MODES:
        raise ValueError(f"diagnose mode {mode!r} is not one of {', '.join(MODES)}")
    if exit_code == 0 or exit_code is None or timed_out or hit_limit:
        return Decision()
    evidence = tuple(find_evidence(log_lines))
    network = next((ev for ev in reversed(evidence) if ev.cause is Cause.NETWORK), None) if not had_network else None
    if mode == "off":
        return Decision(evidence=evidence, network=network, not_retried="--ymir-diagnose=off")
    if mode == "all":
        retries: list[Retry] = []
        why = f"--ymir-diagnose=all (exit {exit_code})"
        if not user_is_root:
            retries.append(Retry(RetryKind.ROOT, why))
        if not had_network:
            retries.append(Retry(RetryKind.NETWORK, why))
        if cpu_mode and not clean_no_gpu:
            retries.append(Retry(RetryKind.GPU_ID, why))
        return Decision(tuple(retries), evidence, network, "" if retries else "nothing left to vary")
    # auto: the evidence nearest the exit decides; network evidence is never retried
    testable = [ev for ev in evidence
                if (ev.cause is Cause.PERMISSION and not user_is_root)
                or (ev.cause is Cause.GPU_ID and cpu_mode and not clean_no_gpu)]
    if not testable:
        if network is not None:
            why = "the log shows a network failure: diagnosed from the log (LC-10), never retried with a network"
        elif evidence:
            why = "the log's evidence names nothing a retry can change"
        else:
            why = "the log shows no evidence of a permission, gpu_id or network cause"
        return Decision(evidence=evidence, network=network, not_retried=why)
    ev = testable[-1]
    if duration_s > RETRY_MAX_S:
        return Decision(evidence=evidence, network=network, not_retried=(
            f"the run took {duration_s:.0f} s, over the {RETRY_MAX_S:g} s retry threshold "
            f"(--ymir-diagnose=all retries anyway); the log shows {describe(ev)}"))
    kind = RetryKind.ROOT if ev.cause is Cause.PERMISSION else RetryKind.GPU_ID
    return Decision((Retry(kind, f"log shows {describe(ev)}"),), evidence, network)


__all__ = ["Cause", "Decision", "Evidence", "MODES", "RETRY_MAX_S", "Retry", "RetryKind", "decide", "describe",
           "find_evidence", "network_evidence", "printable", "tried_url"]
