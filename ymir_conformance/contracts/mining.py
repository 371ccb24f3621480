"""Mining output checks: ``/out/result.tsv`` (contract §5.5, MIN-01..MIN-05, MIN-07; §6 V12, V15; §10).

The platform keeps the first top-k non-empty lines in file order, takes the text before the first TAB of each,
and uses ``splitext(basename(...))`` of it as the asset id; it never reads the score column. MIN-01 owns the
file: when it is missing or unreadable only MIN-01 reports.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator

from ..model import Task
from .base import Area, Level, RunView, Violation, check, short
from .silent_loss import MiningLine, candidate_stems, is_combined, mining_tally

RESULT = "/out/result.tsv"
MINING = [Task.MINING]
FORMAT = "<asset path from candidate-index.tsv>\\t<score>, best first, e.g. /in/assets/95/95e4...c95.jpg\\t0.913"
FIX_TSV = (
    "Write /out/result.tsv with one line per candidate image: the path exactly as in /in/candidate-index.tsv, a TAB "
    "('\\t', never spaces), and the mining score as a float where higher means more worth labelling; sort the lines "
    "by score, highest first, because the platform takes the first top-k lines and ignores the scores. The SDK's "
    "ymir_exc.result_writer.write_mining_result does this."
)


def _lines_where(lines: list[MiningLine]) -> str:
    nums = ", ".join(str(ln.number) for ln in lines[:5])
    return f"line{'s' if len(lines) > 1 else ''} {nums}" + (", ..." if len(lines) > 5 else "")


def _lost_lines(rule: str, lines: list[MiningLine], what: str, expected: str, fix: str) -> Violation:
    """``lines`` the platform silently drops: '<n> line(s) <what>', located and counted as lost."""
    return Violation(rule, f"{len(lines)} line(s) {what}", file=RESULT, where=_lines_where(lines),
                     found=short(lines[0].path), expected=expected, fix=fix, lost=len(lines))


@check("MIN-01", "result.tsv exists when run_mining is true", area=Area.MINING, level=Level.MUST, tasks=MINING)
def min_01(view: RunView) -> Iterator[Violation]:
    art = view.mining_result
    if not art.exists:
        yield Violation("MIN-01", "/out/result.tsv does not exist after a mining run (run_mining: true): the platform "
                        "fails the task with 160011 'Cannot find result file'", file=RESULT, found="no file",
                        expected=FORMAT, fix=FIX_TSV)
    elif not art.ok:
        yield Violation("MIN-01", f"/out/result.tsv {art.problem}: the platform cannot read it", file=RESULT,
                        found=art.problem, expected=FORMAT, fix=FIX_TSV)


@check("MIN-02", "result.tsv lines are '<path>\\t<score>' (TAB separator)", area=Area.MINING, level=Level.MUST,
       tasks=MINING)
def min_02(view: RunView) -> Iterator[Violation]:
    t = mining_tally(view)
    if t is None:
        return
    no_tab = [ln for ln in t.lines if not ln.has_tab]
    if not no_tab:
        return
    lost = len(t.no_tab_lost)
    spaces = sum(1 for ln in no_tab if len(ln.text.split()) >= 2)
    how = " (separated by spaces)" if spaces else ""
    effect = (f"; {lost} of them name no candidate, so the platform silently selects nothing for them"
              if lost else "")
    if lost and lost == len(t.lines):
        effect = "; none of them names a candidate, so the platform silently selects NOTHING (0 of top-k)"
    if lost and is_combined(view):
        effect += ", and in this combined mining+infer run every prediction of those assets is lost too"
    yield Violation("MIN-02", f"{len(no_tab)} of {len(t.lines)} line(s) have no TAB{how}: the platform takes the whole "
                    f"line as the asset path{effect}", file=RESULT, where=_lines_where(no_tab),
                    found=short(no_tab[0].text), expected=FORMAT, fix=FIX_TSV, lost=lost or None)


# a number wrapped in a constructor as str() of a framework scalar prints it: tensor(0.5312), tensor([0.5312]),
# tensor(0.5312, device='cuda:0'), array(0.53, dtype=float32), np.float32(0.53)
_WRAPPED = re.compile(r"^[A-Za-z_][\w.]*\(\s*\[*\s*([-+0-9.eE]+|nan|inf|-inf)\s*\]*\s*(?:,[^()]*(?:\([^()]*\))?[^()]*)?\)$")


def parse_score(text: str | None) -> tuple[float | None, str]:
    """(the score for ordering, or None when there is none; '' or why it is not a plain finite number).

    The platform never reads the score (``mining._get_topk_asset_ids`` keeps the first top-k lines), so these
    problems lose nothing there; they are MIN-07's (SHOULD). A wrapped number (``tensor(0.5312)``) still orders
    the lines for MIN-03."""
    raw = (text or "").strip()
    try:
        value = float(raw)
    except ValueError:
        m = _WRAPPED.match(raw)
        if m is None:
            return None, "not a number"
        value, problem = float(m.group(1)), "a number printed inside a constructor"
    else:
        problem = ""
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return value, "infinite"
    return value, problem


@check("MIN-03", "result.tsv is sorted by score, best first", area=Area.MINING, level=Level.MUST, tasks=MINING)
def min_03(view: RunView) -> Iterator[Violation]:
    """Judged over the lines whose score orders (MIN-07 reports the others): the platform keeps the first top-k
    lines in file order and never reads the score, so only the order can select the wrong images."""
    t = mining_tally(view)
    if t is None:
        return
    out_of_order: list[tuple[MiningLine, float, float]] = []
    prev: float | None = None
    for ln in t.lines:
        if not ln.has_tab:
            continue  # MIN-02
        score, _ = parse_score(ln.score_text)
        if score is None:
            continue  # MIN-07
        if prev is not None and score > prev:
            out_of_order.append((ln, prev, score))
        prev = score
    if out_of_order:
        ln, a, b = out_of_order[0]
        yield Violation("MIN-03", f"the lines are not sorted by score, best first ({len(out_of_order)} place(s) where "
                        "the score goes up): the platform ignores the score and selects the first top-k lines, so it "
                        "selects the wrong images", file=RESULT, where=_lines_where([o[0] for o in out_of_order]),
                        found=f"{a:g} then {b:g} at line {ln.number}", expected="scores non-increasing in file order",
                        fix=FIX_TSV)


@check("MIN-07", "every result.tsv score is a finite number", area=Area.MINING, level=Level.SHOULD, tasks=MINING)
def min_07(view: RunView) -> Iterator[Violation]:
    t = mining_tally(view)
    if t is None:
        return
    bad: dict[str, list[MiningLine]] = {}
    for ln in t.lines:
        if ln.has_tab:
            _, problem = parse_score(ln.score_text)
            if problem:
                bad.setdefault(problem, []).append(ln)
    effects = {
        "nan": "nan does not sort (every comparison with it is false), so these lines stand anywhere in a sorted "
               "file and MIN-03 cannot check their place",
        "infinite": "an infinite score ranks nothing among equals and usually comes from a division by zero",
        "a number printed inside a constructor": "str() of a framework scalar (e.g. a torch tensor): tools "
               "that read result.tsv (the SDK, users' scripts) cannot parse it",
        "not a number": "the order cannot be checked and users cannot see why an image was chosen",
    }
    for problem, lines in bad.items():
        yield Violation(
            "MIN-07", f"{len(lines)} line(s) have a score that is {problem}: the "
            f"platform never reads the score, so it keeps these lines, but {effects[problem]}", file=RESULT,
            where=_lines_where(lines), found=short(lines[0].score_text),
            expected="a finite float in column 2, e.g. 0.913",
            fix="Write each score as a plain finite float: convert framework scalars first (float(t) or t.item() "
                "for a tensor, then f'{score:.6f}'), and replace nan/inf scores (e.g. by 0.0 or the lowest finite "
                "score) before sorting the lines best first.")


@check("MIN-04", "every candidate exactly once; no duplicates; no foreign names", area=Area.MINING,
       level=Level.SHOULD, tasks=MINING)
def min_04(view: RunView) -> Iterator[Violation]:
    t = mining_tally(view)
    if t is None:
        return
    fix = ("Score every line of /in/candidate-index.tsv exactly once and write one line per candidate; do not add "
           "images that are not candidates and do not repeat an image (each wasted line shrinks the selection).")
    if t.foreign:
        yield _lost_lines("MIN-04", t.foreign, "name no candidate image: the platform cannot select them, which "
                          "silently shrinks the selection", "paths from /in/candidate-index.tsv", fix)
    if t.duplicates:
        yield _lost_lines("MIN-04", t.duplicates, "repeat an image listed earlier: the selection silently shrinks",
                          "each candidate once", fix)
    # a candidate named by a line without TAB is MIN-02's violation, not a missing line here
    no_tab_heads = {ln.text.split()[0] for ln in t.lines if not ln.has_tab and ln.text.split()}
    missing = [c for c in t.missing_candidates if c not in no_tab_heads and os.path.basename(c) not in
               {os.path.basename(h) for h in no_tab_heads}]
    if missing:
        n, total = len(missing), len(view.candidates)
        yield Violation("MIN-04", f"{n} of {total} candidate image(s) are not listed" +
                        (" (the file has no usable line)" if not t.lines else ""), file=RESULT,
                        found=", ".join(os.path.basename(c) for c in missing[:5]),
                        expected="one line per candidate", fix=fix)


@check("MIN-05", "result.tsv column 1 is the candidate path as in candidate-index.tsv", area=Area.MINING,
       level=Level.SHOULD, tasks=MINING)
def min_05(view: RunView) -> Iterator[Violation]:
    t = mining_tally(view)
    if t is None:
        return
    stems = candidate_stems(view)
    differ = [ln for ln in t.lines if ln.has_tab and ln.asset_id in stems and ln.path != stems[ln.asset_id]]
    if differ:
        ln = differ[0]
        yield Violation("MIN-05", f"{len(differ)} line(s) name a candidate by another path than the one in "
                        "candidate-index.tsv (the platform still matches it by basename)", file=RESULT,
                        where=_lines_where(differ), found=short(ln.path), expected=repr(stems[ln.asset_id]),
                        fix="Copy the first column verbatim from /in/candidate-index.tsv.")
