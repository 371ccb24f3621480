"""The terminal summary: per image the verdict per release, per-task timings, and the container count.

Rendered from report data (``report_data``), so the same text comes out with or without pytest-xdist. Every line
is printable text only (:func:`ymir_conformance.printable.printable`): run notes, reasons and messages may quote
what the image chose (a stage key with an ESC sequence must not retitle the user's terminal).
"""
from __future__ import annotations

from typing import Any

from ..audit import counts_line
from ..failure_text import capped
from ..printable import printable

RUNS_LISTED = 4  # runs named on a findings line; more are counted
MESSAGE = 300  # characters of a finding's message on its line
MARKS = {"conformant": "PASS", "conformant with warnings": "PASS", "not conformant": "FAIL",
         "not conformant (strict)": "FAIL", "incomplete": "INCOMPLETE", "untested": "-"}


def render_summary(data: dict[str, Any], quiet: bool = False) -> list[str]:
    """The verdict block per image, its task runs (not with ``quiet``, pytest -q), then one line per finding."""
    lines: list[str] = []
    settings = data.get("settings", {})
    for img in data.get("images", []):
        short_id = str(img.get("image_id", "")).removeprefix("sha256:")[:12]
        lines.append(f"{img['image']} ({short_id}), profile {settings.get('profile')}, seed {settings.get('seed')}")
        gate = set(settings.get("gate") or data.get("releases", []))
        for row in img["compatibility"]:
            # both answers (issue 18): the platform's, then the conformance verdict, in report.json's words
            words = row.get("words") or row["verdict"]
            scope = "" if row["release"] in gate else "  (not gating)"
            lines.append(f"  platform {row['release']:<4} {MARKS[row['verdict']]:<10} {words}{scope}")
            if row["must"] or (row["should"] and row["verdict"] != "conformant with warnings"):
                detail = ("MUST: " + ", ".join(row["must"])) if row["must"] else ""
                detail += ("; " if detail and row["should"] else "") + (
                    ("SHOULD: " + ", ".join(row["should"])) if row["should"] else "")
                lines.append(f"  {'':<13} {'':<10} {detail}")
        if len(img["compatibility"]) > 1:
            lines.append(f"  => {img['summary']}")
        for note in dict.fromkeys(r["model_note"] for r in data.get("runs", [])
                                  if r.get("image") == img["image"] and r.get("model_note")):
            lines.append(f"  note: {note}")  # downstream runs on another format's model: the verdict rests on it
        if quiet:
            continue
        lines.append("  task runs:")
        for run in data.get("runs", []):
            if run.get("image") != img["image"]:
                continue
            if "skipped" in run:
                lines.append(f"    {run['id']:<32} not run: {run['skipped']}")
                continue
            t = run["progress_timing"]
            first = f"{t['first_update_s']:.1f}s" if t["first_update_s"] is not None else "never"
            status = "timed out" if run["timed_out"] else f"exit {run['exit_code']}"
            extra = f"  [{'; '.join(run['diagnosis'])}]" if run.get("diagnosis") else ""
            if run.get("network_name"):  # the judged run had a network (--ymir-allow-network)
                extra = f"  network: {run['network_name']}{extra}"
            sched = (f"  queued {run['queue_s']:.1f}s, wall {run['wall_s']:.1f}s" if "queue_s" in run
                     and "wall_s" in run else "")
            lines.append(f"    {run['id']:<32} {status:<9} {run['duration_s']:6.1f}s  progress updates "
                         f"{int(t['updates'] or 0):>4}, first {first}, longest gap {t['longest_gap_s'] or 0:.1f}s"
                         f"{sched}{extra}")
            inputs = counts_line(run.get("inputs_opened") or {})
            if inputs:
                lines.append(f"    {'':<32} inputs opened: {inputs}")
    lines.append(f"container runs: {data.get('container_runs', 0)}")
    lines += fuzz_lines(data)
    lines += finding_lines(data)
    return [printable(line, limit=0) for line in lines]


def fuzz_lines(data: dict[str, Any]) -> list[str]:
    """One line per input-space search (--ymir-fuzz): inputs tried, and the minimal failing input."""
    out = []
    for r in data.get("fuzz", []):
        cov = r.get("coverage") or {}
        head = (f"fuzz {r['search']} of {r['image']}: {r['tried']} input(s) tried ({r['examples']} asked, "
                "shrinking included)"
                + (" (budget spent)" if r.get("budget_spent") else "")
                + (f", modes {', '.join(cov.get('modes', {}))}" if cov.get("modes") else ""))
        f = r.get("failure")
        if r.get("skipped"):
            out.append(f"{head}: not run: {r['skipped']}")
        elif f:
            out.append(f"{head}: FAIL {', '.join(f['rules'])}: {f['input']}: {f['headline']}")
            if f.get("rebuild"):
                out.append(f"  rebuild: {f['rebuild']}")
        else:
            out.append(f"{head}: no failure")
    return out


def finding_lines(data: dict[str, Any]) -> list[str]:
    """One line per rule broken (per image, level and the releases it was found on): the runs it was found in,
    its first message, and how many more violations; MUST first, then SHOULD. One author mistake repeated in
    every run (monitor.txt written with spaces) is one line."""
    groups: dict[tuple[str, str, str, tuple[str, ...]], list[dict[str, Any]]] = {}
    releases = data.get("releases", [])
    for f in data.get("findings", []):
        on = tuple(sorted(f["releases"], key=releases.index if releases else None))
        groups.setdefault((f["image"], f["level"], f["rule"], on), []).append(f)
    if not groups:
        return []
    several = len(data.get("images", [])) > 1
    gate = set(data.get("settings", {}).get("gate") or releases)
    out = ["findings:"]
    for (image, level, rule, on), fs in sorted(groups.items(), key=lambda kv: (kv[0][1] != "MUST", kv[0][:3])):
        runs = sorted(dict.fromkeys(f["run"] for f in fs))
        where = ", ".join(runs[:RUNS_LISTED]) + (f" (+{len(runs) - RUNS_LISTED} runs)" if len(runs) > RUNS_LISTED
                                                   else "")
        if several:
            where = f"{image} {where}"
        total = sum(1 if (n := capped(f["message"])) is None else n for f in fs)
        more = f" (+{total - 1} more)" if total > 1 else ""
        scope = f" [platform {', '.join(on)}]" if len(releases) > 1 and list(on) != releases else ""
        if not gate & set(on):
            scope += " (not gating)"
        basis = f" [{fs[0]['basis']}]" if fs[0].get("basis") else ""
        out.append(f"  [{rule} {level}] {printable(where, limit=200)}: {printable(fs[0]['message'], limit=MESSAGE)}"
                   f"{more}{basis}{scope}")
    return out
