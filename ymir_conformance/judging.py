"""Judging dispatch: a suite test's run (or image) judged on each release it stands for, recorded in the ledger
and turned into the test's outcome (:func:`conclude`: the failure text, the JUnit <system-out> and headline, a
skip). The checks themselves are contracts/; what the suite calls is the session (plugin.py), which delegates here.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from .contracts.base import Area, Check, Finding, Level, Status, Violation, judge, render_all
from .failure_text import Shown
from .options import Settings
from .platform import Release, ReleaseRange, describe
from .printable import printable, printable_lines
from .session import NEGATIVE_INPUTS, RunRecord, RunSpec
from .verdict import must_and_should

if TYPE_CHECKING:
    from .plugin import YmirSession

SYSTEM_OUT_KEY = pytest.StashKey[list[str]]()  # a test's findings, for its JUnit <system-out>
HEADLINE_KEY = pytest.StashKey[str]()  # a failed test's first violation: '[TR-02 MUST] ...'


class Judge:
    """Judges the suite's tests for a session: its settings, its ledger and what failures showed already."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.settings = session.settings
        self.ledger = session.ledger
        self.shown = session.shown

    def skip_or_fail(self, record: RunRecord) -> NoReturn:
        """A record without an outcome: a skip with its reason, or a failure when ymir-conformance itself broke."""
        if record.error:
            pytest.fail(f"ymir-conformance could not run {record.spec.kind} run {record.spec.id}: {printable(record.error, 0)}. "
                        "This is a defect of ymir-conformance, not a verdict on the image: please report it with "
                        "the workspace (--ymir-keep).", pytrace=False)
        self.skip(record.skipped)

    def skip(self, reason: str) -> NoReturn:
        """Skip, except in the certify profile, which may skip nothing the image declares."""
        reason = printable(reason, limit=0)
        if self.settings.profile == "certify" and "declares no" not in reason:
            pytest.fail(f"certify profile: nothing the image declares may be skipped, but: {reason}", pytrace=False)
        pytest.skip(reason)

    def judge_area(self, spec: RunSpec, record: RunRecord, areas: tuple[Area, ...], subject_area: str,
                   node: pytest.Item) -> None:
        if record.outcome is None:
            self.skip_or_fail(record)
        members = spec.judged_on or (spec.release,)
        per_release = {r: judge(record.outcome, r, areas) for r in members}
        self.ledger.add(spec.image, spec.id, subject_area, per_release)
        conclude(per_release, self.settings, node, context=f"{spec.kind} run {spec.id}"
                 + (f" ({record.model_note})" if record.model_note else ""),
                 detail=lambda test, verbose: self.run_detail(record, test, verbose), shown=self.shown)

    def run_detail(self, record: RunRecord, test: str, verbose: bool) -> list[str]:
        """What a failure says about its run, the first time a failure of the run is shown: its exit, the error
        found in its log (excerpt.py), its last lines, where the whole log is, and its docker command (shortened;
        with ``verbose`` in full and the last 15 lines). Later failures of the run point to that one. The first
        line continues the failure's 'run ..., platform ...:' line."""
        from . import failure_text
        from .excerpt import SHORT_TAIL, TAIL, read_excerpt
        from .printable import log_line

        key = (record.spec.image, record.spec.id)
        first = self.shown.runs.setdefault(key, test)
        if first != test:
            return [f"its docker command and log: see {first} above"]
        o = record.outcome
        if o is None:
            return []
        status = ("timed out" if o.timed_out else f"exit {o.exit_code}") + f" after {o.duration_s:.1f} s"
        ex = read_excerpt(o.out_dir)
        where = self.log_location(record)
        found = ex.render(verbose)
        lines = [status]
        if ex.problem:
            lines[0] += f"; {ex.problem}"
        elif not found and not verbose and o.exit_code == 0 and not o.timed_out:
            lines[0] += f"; no error in its log {where}"
        else:
            lines += found
            tail = ex.tail[-(TAIL if verbose or not found else SHORT_TAIL):]
            if tail:
                lines += [f"last {len(tail)} lines of /out/ymir-executor-out.log:"] + [log_line(t) for t in tail]
            else:
                lines.append("/out/ymir-executor-out.log is empty")
            lines.append(f"log: {where}")
        if o.argv:
            if verbose:
                lines.append(f"docker command: {' '.join(o.argv)}")
            else:
                short = failure_text.short_command(o.argv)
                shown_in = self.shown.commands.setdefault(failure_text.same_shape(short), test)
                if shown_in == test:
                    lines.append(f"  {short}")
                else:
                    lines[0] += f"; docker command like {shown_in}'s above"
        return lines

    def log_location(self, record: RunRecord) -> str:
        """Where the run's whole log is, and whether it is kept: logs/<image>/<run>.log in the report
        directory, else the workspace's /out/ymir-executor-out.log."""
        from .report import log_name

        s = self.settings
        if s.report_dir is not None:
            return f"{_nearby(s.report_dir / log_name(record.spec.image, record.spec.id))} (its last MiB, kept)"
        assert record.outcome is not None
        path = _nearby(record.outcome.out_dir / "ymir-executor-out.log")
        if s.keep:
            return f"{path} (kept: --ymir-keep)"
        return f"{path} (not kept: --ymir-report-dir keeps logs)"

    def judge_negative(self, spec: RunSpec, record: RunRecord, node: pytest.Item) -> None:
        """The image must cope (exit 0 with valid outputs) or fail cleanly: non-zero exit, monitor state 4 with
        a 3000xx code, the reason in the last log lines. Never hang, never exit 0 with garbage."""
        if record.outcome is None:
            self.skip_or_fail(record)
        o = record.outcome
        rule, what, _ = NEGATIVE_INPUTS[spec.kind.removeprefix("negative-")]
        target = max(spec.judged_on or (spec.release,))
        context = f"negative input '{what}' ({spec.id})"
        if o.succeeded:  # coped: its outputs must still hold
            findings = judge(o, target, (Area.TRAINING, Area.MONITOR))
        else:
            findings = [f for f in judge(o, target, (Area.LIFECYCLE, Area.MONITOR), with_consequences=False)
                        if f.check.rule != "V1"]  # refusing the input is allowed: MON-07 etc. fail on their own
            clean = _clean_failure(o)
            chk = Check(rule=rule, title="copes with odd input or fails cleanly", area=Area.LIFECYCLE,
                        levels=((ReleaseRange.parse("all"), Level.SHOULD),), func=lambda view: ())
            violations = [] if clean is None else [Violation(
                rule, f"the image neither coped with the input ({what}) nor failed cleanly: {clean}",
                file="/out/monitor.txt", level=Level.SHOULD,
                expected="success, or monitor state 4 with a 3000xx code, the reason last in the log and a non-zero exit",
                fix="validate inputs up front; on unusable input write monitor state 4 with the matching 3000xx "
                    "code (300001 config, 300002 dataset, 300003 image) and print the reason last, then exit 1")]
            findings.append(Finding(chk, Status.FAILED if violations else Status.PASSED, Level.SHOULD, violations))
        self.ledger.add(spec.image, spec.id, "negative", {target: findings})
        conclude({target: findings}, self.settings, node, context=context,
                 detail=lambda test, verbose: self.run_detail(record, test, verbose), shown=self.shown)

    def judge_image(self, image: str, node: pytest.Item) -> None:
        info = self.session.conductor.info(image)
        per_release = {r: info.findings(r) for r in self.settings.releases}
        self.ledger.add(image, "image", "image", per_release)
        conclude(per_release, self.settings, node, context=f"image {image}", detail=lambda test, verbose: [],
                 shown=self.shown)


def _clean_failure(o: Any) -> str | None:
    """None when a failed run failed cleanly (state 4 + 3000xx code), else what was missing."""
    from . import guard
    from .errors import UnsafeOutput
    from .progress import parse_record

    if o.timed_out:
        return "it hung until the time limit"
    try:
        raw = guard.read_text(o.out_dir, "monitor.txt", guard.CAPS["monitor"])
    except FileNotFoundError:
        return "no /out/monitor.txt"
    except UnsafeOutput as exc:
        return f"/out/monitor.txt {exc.problem}"
    except OSError as exc:
        return f"/out/monitor.txt cannot be read: {exc.strerror or exc}"
    rec = parse_record(raw)
    fields = raw.split("\n", 1)[0].split("\t")
    if rec is None or rec[2] != 4:
        first = raw.splitlines()[0][:200] if raw else "(empty)"
        return f"exit {o.exit_code} but monitor.txt line 1 is {printable(repr(first))}, not state 4"
    if len(fields) < 5 or not fields[4].strip().startswith("3000"):
        found = printable(repr(fields[4][:40] if len(fields) > 4 else "nothing"))
        return f"state 4 without a 3000xx code in column 5 (found {found})"
    return None


def _nearby(path: Path) -> str:
    """``path`` relative to the working directory when it is beneath it, else absolute."""
    import os

    full = path.absolute()
    try:
        return str(full.relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(full)


def conclude(per_release: dict[Release, list[Finding]], settings: Settings, node: pytest.Item | None, context: str,
             detail: Callable[[str, bool], list[str]], shown: Shown | None = None) -> None:
    """Turn one test's findings (per judged release) into its outcome.

    The test fails on MUST violations (and SHOULD with --ymir-strict) on a gated release (--ymir-gate, default
    every judged release): the failure text starts with the violations (``[TR-02 MUST] ...``), then what was
    judged, then ``detail(test, verbose)`` (the run's exit, log excerpt and docker command, once per run).
    By default the text is sized for a human (failure_text.py: per rule the first violation in full and the
    others counted, each fix once, a shortened docker command); with -v (verbosity >= 1) every violation and
    the full docker command. Violations on releases that do not gate are reported, never failed. Every finding
    goes to the test's JUnit <system-out>; SHOULD violations are never Python warnings: the ymir-conformance
    summary lists them.
    """
    from . import failure_text

    releases = sorted(per_release)
    gated = [r for r in releases if r in settings.gated]

    def blocking_on(r: Release) -> list[Finding]:
        must, should = must_and_should(per_release[r])
        return must + (should if settings.strict else [])

    failing = [r for r in gated if blocking_on(r)]
    with_findings = [r for r in releases if any(f.status is Status.FAILED for f in per_release[r])]
    shown_on = max(failing) if failing else max(with_findings) if with_findings else max(releases)
    findings = per_release[shown_on]
    must, should = must_and_should(findings)
    on = describe([r for r in releases if _rules(per_release[r]) == _rules(findings)]) if len(releases) > 1 \
        else str(shown_on)
    out = [f"{context}: judged on platform {', '.join(str(r) for r in releases)}"
           + (f" (gating: {', '.join(str(r) for r in gated) or 'none'})" if settings.gate else "")]
    for f in findings:
        if f.status is not Status.NOT_APPLICABLE:
            out.append(f"  {f.check.rule:<8} {f.status}" + (f" ({f.level}, {f.check.basis})" if f.level else "")
                       + (f": {f.reason}" if f.reason and f.status is not Status.PASSED else ""))
    if must or should:
        out += ["", f"violations on platform {on}:"] + render_all([v for f in must + should for v in f.violations])
    others = [r for r in with_findings if _rules(per_release[r]) != _rules(findings)]
    for r in others:
        out.append(f"also on platform {r}: " + ", ".join(f"{rule} {lvl}" for rule, lvl in sorted(_rules(per_release[r]))))
    if node is not None:
        node.stash[SYSTEM_OUT_KEY] = out
    if failing:
        blocking = blocking_on(shown_on)
        violations = [v for f in blocking for v in f.violations]
        rest = [v for f in (must + should) if f not in blocking for v in f.violations]
        rules = sorted({f.check.rule for f in blocking})
        test = node.name if node is not None else context
        verbose = node is None or node.config.get_verbosity() >= 1
        summary = f"{len(violations)} violation(s) of {', '.join(rules)} on platform {on}, by {context}"
        if verbose:
            text = render_all(violations) + ["", summary]
            if rest:
                text += ["also (SHOULD, not failing):"] + render_all(rest)
        else:
            memo = shown if shown is not None else failure_text.Shown()
            text = failure_text.violations(violations, memo, test)
            if rest:
                text += ["also (SHOULD, not failing):"] + failure_text.violations(rest, memo, test)
        not_gating = [r for r in with_findings if r not in settings.gated]
        if not_gating:
            text.append(f"reported, not gating (--ymir-gate): findings on platform {describe(not_gating)}")
        more = detail(test, verbose)
        if more:  # one line for the run: '<kind> run <id>, platform 2.5: exit 0 after ...'
            text += [f"{context}, platform {on}: {more[0]}"] + more[1:]
        elif not verbose:
            text.append(summary)
        if node is not None:  # JUnit's failure message and the short summary: the first violation's own line
            first = violations[0].render(with_fix=False) if violations else text[0]
            node.stash[HEADLINE_KEY] = printable(first.split("\n", 1)[0], limit=0)
        pytest.fail(printable_lines("\n".join(text)), pytrace=False)  # the one failure text: printable only
    not_eval = [f for f in findings if f.status is Status.NOT_EVALUATED]
    if not_eval and not any(f.status is Status.PASSED and f.level is Level.MUST for f in findings):
        pytest.skip(f"not evaluated: {not_eval[0].reason} (see test_lifecycle for why)")


def _rules(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.check.rule, str(f.level)) for f in findings if f.status is Status.FAILED}


__all__ = ["Judge", "conclude", "SYSTEM_OUT_KEY", "HEADLINE_KEY"]
