"""Parsing ``/out/monitor.txt`` the way the platform does (contract §5.1), without ever raising.

The platform (``percent_log_util.PercentLogHandler.parse_percent_log``) reads only line 1, strips it, splits
it on TAB and needs at least four fields: ``task_id``, ``timestamp`` (float), ``percent`` (float), ``state``
(int literal, a ``LogState`` 0..4), then optionally ``state_code`` (int) and ``state_message``; lines 2.. are
kept as free text (e.g. a traceback).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from ..model import ProgressSample, RunOutcome

MONITOR_PATH = "/out/monitor.txt"
STATE_NAMES = {0: "UNKNOWN", 1: "PENDING", 2: "RUNNING", 3: "DONE", 4: "ERROR"}
_INT_RE = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Record:
    """Line 1 of a monitor file, parsed."""

    task_id: str
    ts_text: str
    timestamp: float
    percent: float
    state: int
    code: int | None
    message: str
    extra_lines: tuple[str, ...] = ()

    @property
    def is_platform_pending(self) -> bool:
        """The PENDING line the platform writes before the container starts (``<tid>\\t<ts>\\t0.00\\t1\\t0``)."""
        return self.state == 1 and self.percent == 0.0 and self.code in (None, 0)


@dataclass(frozen=True)
class ParseError:
    """Why line 1 is not a record: ``field`` names the offending column (or ``"line"``)."""

    reason: str
    field: str
    value: str
    n_fields: int
    space_separated: bool  # looks like a record written with spaces instead of TABs


@dataclass
class Snapshot:
    """One content of monitor.txt: a live sample (``seen_s`` set) or the final file (``seen_s`` is None)."""

    raw: str
    seen_s: float | None
    record: Record | None = None
    error: ParseError | None = None
    record_like_lines: list[int] = field(default_factory=list)  # 1-based numbers of lines 2.. that parse

    @property
    def empty(self) -> bool:
        return not self.raw.strip()

    @property
    def label(self) -> str:
        return "the final file" if self.seen_s is None else f"the sample seen {self.seen_s:.1f} s after start"

    @property
    def first_line(self) -> str:
        return self.raw.split("\n", 1)[0].rstrip("\r")


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def parse_line(line: str) -> Record | ParseError:
    """Parse one monitor line as the platform parses line 1."""
    stripped = line.strip()
    fields = stripped.split("\t")
    space_sep = len(fields) < 4 and len(stripped.split()) >= 4
    if len(fields) < 4:
        return ParseError(f"has {len(fields)} TAB-separated field(s), the platform needs at least 4",
                          "line", stripped, len(fields), space_sep)
    task_id, ts_text, pct_text, state_text = (f.strip() for f in fields[:4])
    ts = _float(ts_text)
    if ts is None or not math.isfinite(ts):
        return ParseError("timestamp (column 2) is not a float", "timestamp", ts_text, len(fields), False)
    pct = _float(pct_text)
    if pct is None:
        return ParseError("percent (column 3) is not a float", "percent", pct_text, len(fields), False)
    if not _INT_RE.match(state_text):
        return ParseError("state (column 4) is not an integer literal", "state", state_text, len(fields), False)
    state = int(state_text)
    if state not in STATE_NAMES:
        return ParseError("state (column 4) is not a LogState 0..4", "state", state_text, len(fields), False)
    code: int | None = None
    if len(fields) > 4:
        code_text = fields[4].strip()
        if not _INT_RE.match(code_text):
            return ParseError("state_code (column 5) is not an integer literal", "state_code", code_text,
                              len(fields), False)
        code = int(code_text)
    message = "\t".join(fields[5:]).strip() if len(fields) > 5 else ""
    return Record(task_id, ts_text, ts, pct, state, code, message)


def snapshot(raw: str, seen_s: float | None) -> Snapshot:
    snap = Snapshot(raw=raw, seen_s=seen_s)
    if snap.empty:
        return snap
    lines = raw.split("\n")
    parsed = parse_line(lines[0])
    if isinstance(parsed, Record):
        extra = tuple(ln.rstrip("\r") for ln in lines[1:] if ln.strip())
        snap.record = replace(parsed, extra_lines=extra)
    else:
        snap.error = parsed
    for i, ln in enumerate(lines[1:], start=2):
        if ln.strip() and isinstance(parse_line(ln), Record):
            snap.record_like_lines.append(i)
    return snap


def snapshots(outcome: RunOutcome, final_text: str | None) -> list[Snapshot]:
    """Live samples in time order, then the final file when it differs from the last sample."""
    samples: list[ProgressSample] = sorted(outcome.progress, key=lambda s: s.seen_s)
    out = [snapshot(s.raw, s.seen_s) for s in samples]
    if final_text is not None and (not out or out[-1].raw != final_text):
        out.append(snapshot(final_text, None))
    return out


def image_records(snaps: list[Snapshot]) -> list[tuple[Snapshot, Record]]:
    """Distinct line-1 records in time order, without the platform's PENDING line."""
    result: list[tuple[Snapshot, Record]] = []
    last_line: str | None = None
    for snap in snaps:
        rec = snap.record
        if rec is None or rec.is_platform_pending:  # the platform's line (left on top by an appending image)
            continue
        line = snap.first_line.strip()
        if line == last_line:
            continue
        last_line = line
        result.append((snap, rec))
    return result


def final_record(text: str) -> Record | None:
    parsed = snapshot(text, None)
    return parsed.record
