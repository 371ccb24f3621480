"""Checks of ``/out/monitor.txt`` (contract §5.1, MON-01..MON-07; MON-08 lives in lifecycle.py).

Every check judges the final file and every distinct content the live sampler saw (``outcome.progress``).
The platform's own initial PENDING line (state 1, percent 0) is never a violation by itself.
"""
from __future__ import annotations

from collections.abc import Iterator

from .base import Area, Level, RunView, Violation, cap, check, index_lines, short
from .monitor_format import (
    MONITOR_PATH,
    STATE_NAMES,
    Record,
    Snapshot,
    image_records,
    snapshot,
    snapshots,
)

RECORD_FORMAT = "<task_id>\\t<timestamp>\\t<percent>\\t<state>\\t<state_code>, e.g. " \
                "t0000001000002ebb7f11653630774\\t1663839980.123456\\t0.35\\t2\\t0"

FIX_FORMAT = (
    "Write line 1 of /out/monitor.txt as TAB-separated fields: task_id (from /in/env.yaml), the time as "
    "seconds since the epoch (time.time()), the progress as a float in [0, 1], the state as an integer "
    "(2 = RUNNING while working, 4 = ERROR on failure) and the state code as an integer (0 while running, "
    "the error code such as 300001 on failure). Use '\\t' between fields, never spaces: the platform splits "
    "on TAB and marks the task failed (150404 PERCENT_LOG_PARSE_ERROR) when it cannot parse the line. The "
    "SDK does this for you: ymir_exc.monitor.write_monitor_logger(percent)."
)
FIX_OVERWRITE = (
    "Open /out/monitor.txt with mode 'w' (overwrite) at every update, never 'a' (append): the platform reads "
    "only line 1, so appended records are never seen and the task looks stuck at 0 % for the whole run. Keep "
    "free text (e.g. a traceback) only after the single record line, and only when reporting state 4."
)
FIX_ATOMIC = (
    "Write the monitor atomically: write the whole record to a temporary file inside /out (e.g. "
    "/out/monitor.txt.tmp) and os.replace() it onto /out/monitor.txt. The platform polls the file every 20 s; "
    "if it catches a half-written line with fewer than 4 fields it marks the task ERROR."
)
FIX_PERCENT = (
    "Report progress as a float in [0, 1] that never goes backwards and ends at 1.0 when the task is done "
    "(in a combined mining+infer run map mining to [0, 0.5] and infer to [0.5, 1], as the SDK's "
    "write_monitor_logger_for_multiple_tasks does). The UI shows this value and estimates the remaining time "
    "from it."
)
FIX_TIMESTAMP = (
    "Put a fresh time.time() (seconds since the epoch, e.g. formatted with 6 decimals) in column 2 at every "
    "write. The platform's monitor treats the file as updated only when the timestamp string changes, so an "
    "update with an unchanged or older timestamp is ignored."
)
FIX_STATE3 = (
    "Write state 2 (RUNNING) while working, including the final 1.0 update, and never state 3 (DONE): the "
    "platform writes DONE itself after it has post-processed your outputs, and a DONE from the executor does "
    "not complete the task in the UI."
)
FIX_ERROR = (
    "On a real failure write '<task_id>\\t<time>\\t<percent>\\t4\\t<code>' (code from ymir_exc.code, e.g. "
    "300001 config error, 300002 dataset error, 300004 model error, 300102 no GPU, 300103 CUDA OOM), put the "
    "reason or traceback on the following lines, print the cause last on stdout/stderr and exit non-zero. Never "
    "write state 4 when the task succeeds: the first time the platform sees state 4 it marks the task failed "
    "for good."
)


def _final_text(view: RunView) -> str | None:
    art = view.monitor
    return art.text if art.ok else None


def _snaps(view: RunView) -> list[Snapshot]:
    return snapshots(view.outcome, _final_text(view))


def _half_written(snap: Snapshot, later: list[Snapshot]) -> bool:
    """A live sample caught mid-write: a prefix of a later content, or a single line with no newline yet."""
    if snap.seen_s is None or snap.error is None or snap.error.space_separated:
        return False
    if any(o.raw != snap.raw and o.raw.startswith(snap.raw) for o in later):
        return True
    return not snap.raw.endswith("\n") and (snap.error.n_fields < 4 or snap.raw.rstrip("\r").endswith("\t"))


def _where(snap: Snapshot) -> str:
    return "line 1" if snap.seen_s is None else f"line 1 (live sample at {snap.seen_s:.1f} s)"


@check("MON-01", "monitor.txt line 1 is a TAB-separated record the platform can parse", area=Area.MONITOR,
       level=Level.MUST, needs_success=False)
def mon_01(view: RunView) -> Iterator[Violation]:
    art = view.monitor
    if not art.exists:
        yield Violation("MON-01", "/out/monitor.txt does not exist after the run (the platform writes a PENDING "
                        "line there before the start; the image removed it or never reported progress)",
                        file=MONITOR_PATH, found="no file", expected=RECORD_FORMAT, fix=FIX_FORMAT)
        return
    if not art.ok:
        yield Violation("MON-01", f"/out/monitor.txt {art.problem}", file=MONITOR_PATH,
                        expected="a small UTF-8 text file", fix=FIX_FORMAT)
        return
    final = snapshot(art.text, None)
    if final.empty:
        yield Violation("MON-01", "/out/monitor.txt is empty at the end of the run; after a failure the "
                        "platform's parser raises on it and the task code becomes 169999", file=MONITOR_PATH,
                        where="line 1", found="empty file", expected=RECORD_FORMAT, fix=FIX_FORMAT)
    elif final.error is not None:
        yield _format_violation(final)
    snaps = _snaps(view)
    bad: list[Violation] = []
    seen_lines: set[str] = set()
    for i, snap in enumerate(snaps):
        if snap.seen_s is None or snap.empty or snap.error is None:
            continue
        if _half_written(snap, snaps[i + 1:]) or snap.first_line in seen_lines:
            continue
        if final.error is not None and snap.first_line == final.first_line:
            continue
        seen_lines.add(snap.first_line)
        bad.append(_format_violation(snap))
    yield from cap(bad)


def _format_violation(snap: Snapshot) -> Violation:
    err = snap.error
    assert err is not None
    msg = f"line 1 of /out/monitor.txt ({snap.label}) {err.reason}"
    if err.space_separated:
        msg += "; the fields are separated by spaces, the platform splits on TAB only"
    msg += ": while the task runs the platform marks it ERROR (150404 PERCENT_LOG_PARSE_ERROR)"
    found = short(snap.first_line) if err.field == "line" else f"{err.field} = {short(err.value)} in {short(snap.first_line)}"
    return Violation("MON-01", msg, file=MONITOR_PATH, where=_where(snap), found=found, expected=RECORD_FORMAT,
                     fix=FIX_FORMAT)


@check("MON-02", "monitor.txt holds only the latest record (overwrite, never append)", area=Area.MONITOR,
       level=Level.MUST, needs_success=False)
def mon_02(view: RunView) -> Iterator[Violation]:
    snaps = _snaps(view)
    final = snaps[-1] if snaps and snaps[-1].seen_s is None else None
    for snap in ([final] if final is not None else []) + [s for s in snaps if s.seen_s is not None]:
        rec = snap.record
        if rec is None:
            continue
        extra = [ln for ln in snap.raw.split("\n")[1:] if ln.strip()]
        appended_after_pending = rec.is_platform_pending and bool(extra)
        if not snap.record_like_lines and not appended_after_pending:
            continue
        n = len(snap.record_like_lines) + 1
        if appended_after_pending:
            msg = (f"/out/monitor.txt ({snap.label}) still has the platform's PENDING line (0 %) as line 1 and "
                   f"the image's output appended below it ({len(extra)} more line(s)); the platform reads only "
                   "line 1, so the UI shows the task stuck at 0 % for the whole run")
        else:
            msg = (f"/out/monitor.txt ({snap.label}) holds {n} record lines: the image appends instead of "
                   "overwriting; the platform reads only line 1, so the UI never sees any later progress and "
                   "the task looks stuck at its first value (0 % when line 1 is the platform's PENDING line)")
        lines = snap.record_like_lines or [2]
        yield Violation("MON-02", msg, file=MONITOR_PATH, where=f"lines 1 and {', '.join(map(str, lines[:5]))}",
                        found=short(snap.raw.split("\n")[lines[0] - 1]), expected="exactly one record line",
                        fix=FIX_OVERWRITE)
        return


@check("MON-03", "monitor.txt is written atomically (never seen half-written)", area=Area.MONITOR,
       level=Level.SHOULD, needs_success=False)
def mon_03(view: RunView) -> Iterator[Violation]:
    snaps = _snaps(view)
    bad = [
        Violation("MON-03", f"the live sampler caught /out/monitor.txt half-written ({snap.label}): "
                  f"line 1 {snap.error.reason if snap.error else 'is incomplete'}; a platform poll at that moment "
                  "marks the task ERROR", file=MONITOR_PATH, where=_where(snap), found=short(snap.raw),
                  expected="a complete record at every moment", fix=FIX_ATOMIC)
        for i, snap in enumerate(snaps)
        if snap.error is not None and _half_written(snap, snaps[i + 1:])
    ]
    yield from cap(bad)


@check("MON-04", "progress is in [0, 1], never goes backwards, and reaches 1.0", area=Area.MONITOR,
       level=Level.SHOULD, needs_success=False)
def mon_04(view: RunView) -> Iterator[Violation]:
    recs = image_records(_snaps(view))
    out_of_range: list[Violation] = []
    backwards: list[Violation] = []
    prev: tuple[Snapshot, Record] | None = None
    for snap, rec in recs:
        if not (0.0 <= rec.percent <= 1.0):
            hint = " (looks like a percentage: divide by 100)" if 1.0 < rec.percent <= 100.0 else ""
            out_of_range.append(Violation("MON-04", f"progress {short(rec.percent)} is outside [0, 1] "
                                          f"({snap.label}){hint}", file=MONITOR_PATH, where=_where(snap) + ", column 3",
                                          found=short(rec.percent), expected="0.0 <= percent <= 1.0", fix=FIX_PERCENT))
        if prev is not None and rec.state != 4 and rec.percent < prev[1].percent - 1e-9:  # an ERROR's percent is moot
            backwards.append(Violation("MON-04", f"progress goes backwards from {prev[1].percent:g} "
                                       f"({prev[0].label}) to {rec.percent:g} ({snap.label})", file=MONITOR_PATH,
                                       where=_where(snap) + ", column 3",
                                       found=f"{prev[1].percent:g} -> {rec.percent:g}",
                                       expected="non-decreasing progress", fix=FIX_PERCENT))
        prev = (snap, rec)
    yield from cap(out_of_range)
    yield from cap(backwards)
    if view.outcome.succeeded:
        text = _final_text(view)
        fsnap = snapshot(text, None) if text is not None else None
        final = fsnap.record if fsnap is not None else None
        appended = fsnap is not None and (bool(fsnap.record_like_lines) or (
            final is not None and final.is_platform_pending and len(index_lines(fsnap.raw)) > 1))
        if final is not None and not appended and final.percent < 1.0 - 1e-6:  # appending is MON-02's
            never = " (the image never reported progress)" if not recs else ""
            yield Violation("MON-04", f"the run succeeded but the final progress is {final.percent:g}, not 1.0{never}",
                            file=MONITOR_PATH, where="line 1, column 3", found=short(final.percent),
                            expected="1.0 at the end of a successful run", fix=FIX_PERCENT)


@check("MON-05", "monitor timestamps strictly increase across writes", area=Area.MONITOR, level=Level.SHOULD,
       needs_success=False)
def mon_05(view: RunView) -> Iterator[Violation]:
    recs = image_records(_snaps(view))
    bad: list[Violation] = []
    for (psnap, prec), (snap, rec) in zip(recs, recs[1:]):
        if rec.timestamp > prec.timestamp and rec.ts_text != prec.ts_text:
            continue
        what = "does not change" if rec.ts_text == prec.ts_text else "goes backwards"
        bad.append(Violation("MON-05", f"the timestamp {what} between two updates ({psnap.label} -> {snap.label}); "
                             "the platform ignores an update whose timestamp string is unchanged",
                             file=MONITOR_PATH, where=_where(snap) + ", column 2",
                             found=f"{prec.ts_text} -> {rec.ts_text}", expected="a strictly larger timestamp",
                             fix=FIX_TIMESTAMP))
    yield from cap(bad)


@check("MON-06", "the executor never writes state 3 (DONE)", area=Area.MONITOR, level=Level.SHOULD,
       needs_success=False)
def mon_06(view: RunView) -> Iterator[Violation]:
    seen: set[str] = set()
    bad: list[Violation] = []
    for snap in _snaps(view):
        if snap.record is not None and snap.record.state == 3 and snap.first_line not in seen:
            seen.add(snap.first_line)
            bad.append(Violation("MON-06", f"the executor wrote state 3 (DONE) ({snap.label})", file=MONITOR_PATH,
                                 where=_where(snap) + ", column 4", found=short(snap.first_line),
                                 expected="state 2 (RUNNING) while working, 4 (ERROR) on failure", fix=FIX_STATE3))
    yield from cap(bad)


@check("MON-07", "state 4 (ERROR) exactly on a real failure, with the code in column 5", area=Area.MONITOR,
       level=Level.MUST, needs_success=False, consequence_of="V1")
def mon_07(view: RunView) -> Iterator[Violation]:
    outcome = view.outcome
    snaps = _snaps(view)
    if outcome.succeeded:
        for snap in snaps:
            if snap.record is not None and snap.record.state == 4:
                yield Violation("MON-07", f"the executor wrote state 4 (ERROR) ({snap.label}) but exited 0: the "
                                "platform marks the task failed permanently the first time it sees state 4",
                                file=MONITOR_PATH, where=_where(snap) + ", column 4", found=short(snap.first_line),
                                expected="state 2 on a successful run", fix=FIX_ERROR)
                return
        return
    if outcome.timed_out or outcome.exit_code is None or outcome.hit_limit:
        return  # a run the suite's pids/memory limit stopped had no fair chance to report: LC-11/LC-12 own it
    text = _final_text(view)
    if text is None:
        return  # MON-01 reports the unreadable file
    final = snapshot(text, None)
    rec = final.record
    if rec is None:
        return  # MON-01 reports it
    if rec.state != 4:
        yield Violation("MON-07", f"the container exited {outcome.exit_code} but the final monitor state is "
                        f"{rec.state} ({STATE_NAMES.get(rec.state, '?')}), not 4 (ERROR): the UI keeps showing the "
                        "task as running until the platform overwrites the file, and (ymir >= 2.3) the task code "
                        "falls back to the generic 160004", file=MONITOR_PATH, where="line 1, column 4",
                        found=short(final.first_line), expected="state 4 with the error code in column 5",
                        fix=FIX_ERROR)
    elif not rec.code:
        yield Violation("MON-07", f"the final monitor line has state 4 but no error code in column 5 "
                        f"(found {short(rec.code)}); ymir >= 2.3 uses column 5 as the task's return code",
                        file=MONITOR_PATH, where="line 1, column 5", found=short(final.first_line),
                        expected="a non-zero code such as 300002", fix=FIX_ERROR)
