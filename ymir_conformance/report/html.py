"""A self-contained HTML certificate rendered from report.json data: inline CSS and SVG only, no script, no
external link, so the file can be archived, mailed and opened offline.

Top to bottom: a banner with the verdict per platform release, then per image its identity, the task runs
(exit, time, a progress plot with the time budgets, what the run read), the findings grouped by rule (the fix
once, every location, found/expected, the run's log tail), the rules checked per release with pass counts, and
how to reproduce the session.
"""
from __future__ import annotations

import html
import shlex
from typing import Any

from ..audit import counts_line
from ..printable import printable
from ..contracts.basis import basis_of

CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#eef1f6;color:#1d2330}
main{max-width:1180px;margin:1.5rem auto;background:#fff;border:1px solid #d5dbe6;border-radius:10px;
padding:2rem 2.4rem;box-shadow:0 2px 10px rgba(20,30,60,.08)}
h1{font-size:1.7rem;margin:0 0 .2rem} h2{margin-top:2.2rem;border-bottom:2px solid #dfe4ee;padding-bottom:.3rem}
h3{margin:1.4rem 0 .4rem} .sub{color:#5d6678;font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0} td,th{border:1px solid #dde2ec;padding:.35rem .55rem;
text-align:left;vertical-align:top;font-size:.88rem} th{background:#f3f5f9}
table.kv th{width:11rem}
code,pre{font-family:"DejaVu Sans Mono",monospace}
pre{background:#f6f7f9;padding:.5rem;overflow-x:auto;font-size:.78rem;white-space:pre-wrap;margin:.3rem 0}
.banner{display:grid;grid-template-columns:repeat(auto-fit,minmax(10.5rem,1fr));gap:.7rem;margin:1.2rem 0 .6rem}
.rel{border-radius:8px;padding:.7rem .9rem;border:2px solid transparent}
.rel .r{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;opacity:.8}
.rel .v{font-size:1.25rem;font-weight:700;margin-top:.15rem} .rel .m{font-size:.8rem;margin-top:.2rem}
.rel.gated{border-color:currentColor}
.conformant{background:#d9f5df;color:#17622b} .conformant-with-warnings{background:#fff1c2;color:#6d5000}
.not-conformant,.not-conformant-strict{background:#fde0e0;color:#8a1c1c}
.incomplete,.untested{background:#e8e8ee;color:#444}
.rel .a{font-size:.85rem;font-weight:600;margin-top:.25rem}
.basis{display:inline-block;border:1px solid currentColor;border-radius:4px;padding:0 .35rem;font-size:.75rem;
font-weight:600;color:#44506a;margin-left:.4rem}
.summary{font-size:1.15rem;font-weight:600;margin:.4rem 0 1rem}
.pill{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-weight:600;font-size:.8rem}
.MUST{color:#8a1c1c;font-weight:700} .SHOULD{color:#7a5a00;font-weight:700}
tr.bad td.exit{background:#fde0e0;color:#8a1c1c;font-weight:700} tr.ok td.exit{color:#17622b;font-weight:600}
td.pass{background:#e3f6e7;color:#17622b;text-align:center} td.fail{background:#fde0e0;color:#8a1c1c;
text-align:center;font-weight:700} td.na{color:#8a92a3;text-align:center} td.ne{background:#eef0f4;text-align:center}
.rule{border:1px solid #e2c4c4;border-left:6px solid #c53030;border-radius:6px;padding:.6rem .9rem;margin:1rem 0}
.rule.SHOULDbox{border-color:#ecdcaa;border-left-color:#c79200}
.fix{background:#eef6ff;border-radius:6px;padding:.45rem .7rem;margin:.4rem 0}
.loc td{font-size:.82rem} td code{white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%;margin:.6rem 0} .scroll>table{margin:0}
h1,h2,h3,.summary,.sub,.fix{overflow-wrap:anywhere} pre{overflow-wrap:anywhere}
table.kv td code{white-space:normal;word-break:break-all}
svg.plot{display:block}
@media (max-width:640px){
main{margin:0;border:0;border-radius:0;padding:1rem .8rem;box-shadow:none}
h1{font-size:1.35rem} h2{font-size:1.2rem} .rule{padding:.5rem .6rem}
table.kv th{width:auto}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr:first-child{display:none}
table.stack tr{border:1px solid #dde2ec;border-radius:6px;margin:.5rem 0}
table.stack td{border:0;border-top:1px solid #eef0f4}
table.stack td::before{display:block;font-size:.7rem;color:#5d6678;text-transform:uppercase;letter-spacing:.04em}
table.stack td code{white-space:normal;word-break:break-all}
svg.plot{max-width:100%;height:auto}
table.verdicts.stack tr:not(:first-child){display:grid;grid-template-columns:repeat(6,1fr)}
table.verdicts.stack td{grid-column:span 2} table.verdicts.stack td:nth-child(4){grid-column:span 6}
table.verdicts.stack td:nth-child(5),table.verdicts.stack td:nth-child(6){grid-column:span 3}
table.verdicts td:nth-child(1)::before{content:"platform release"}
table.verdicts td:nth-child(2)::before{content:"gated"}
table.verdicts td:nth-child(3)::before{content:"platform accepts"}
table.verdicts td:nth-child(4)::before{content:"verdict"}
table.verdicts td:nth-child(5)::before{content:"MUST broken"}
table.verdicts td:nth-child(6)::before{content:"SHOULD broken"}
table.runs td:nth-child(1)::before{content:"run"}
table.runs td:nth-child(2)::before{content:"exit"}
table.runs td:nth-child(3)::before{content:"time"}
table.runs td:nth-child(4)::before{content:"progress"}
table.runs td:nth-child(5)::before{content:"what the run read"}
table.loc td:nth-child(1)::before{content:"run"}
table.loc td:nth-child(2)::before{content:"where"}
table.loc td:nth-child(3)::before{content:"what"}
table.loc td:nth-child(4)::before{content:"found"}
table.loc td:nth-child(5)::before{content:"expected"}
table.runs tr.skip td:nth-child(3)::before{content:"why"}
table.fuzz td:nth-child(1)::before{content:"search"}
table.fuzz td:nth-child(2)::before{content:"inputs tried"}
table.fuzz td:nth-child(3)::before{content:"covered"}
table.fuzz td:nth-child(4)::before{content:"outcome"}
}
"""

STATES = {"1": "pending", "2": "running", "3": "done", "4": "error"}
OBJECT_TYPE_NAMES = {2: "detection", 3: "semantic segmentation", 4: "instance segmentation", 50: "multi-modal"}
ACCEPTS_WORDS = {True: "accepted by the platform", False: "rejected by the platform", None: "platform: not known"}


def _e(x: Any) -> str:
    """Any text for the certificate: printable first (what the image chose is shown escaped, e.g. ``\\x1b``,
    ``\\u202e``: no control character, bidi override or lone surrogate reaches the page), then HTML-escaped."""
    return html.escape(printable(x, limit=0))


def _e_lines(lines: Any) -> str:
    """Lines for a ``<pre>``: each made printable and HTML-escaped, joined by line breaks."""
    return "\n".join(_e(line) for line in lines)


def _cls(verdict: str) -> str:
    """'not conformant (strict)' -> 'not-conformant-strict' (a CSS class)."""
    return "-".join("".join(c if c.isalnum() else " " for c in verdict).split())


def _pill(verdict: str) -> str:
    return f'<span class="pill {_cls(verdict)}">{_e(verdict)}</span>'


def _words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "unknown"
    if n < 1024:
        return f"{n} B"
    value, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit} ({n:,} bytes)"


# --------------------------------------------------------------------------------------------------------
# The verdict in words
# --------------------------------------------------------------------------------------------------------


def verdict_sentence(image: dict[str, Any]) -> str:
    """The image's summary line (report.json ``images[].summary``, the terminal's '=>' line), as a sentence:
    'Conformant on 2.4-2.5; accepted by the platform, not conformant on 2.1-2.3 (IN-11).'"""
    text = str(image.get("summary") or "nothing was judged")
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------------------------------------
# The progress plot
# --------------------------------------------------------------------------------------------------------


def _progress_points(points: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    out = []
    for p in points:
        fields = str(p.get("line", "")).split("\t")
        try:
            out.append((float(p["seen_s"]), max(0.0, min(1.0, float(fields[2]))), fields[3] if len(fields) > 3 else ""))
        except (IndexError, ValueError, KeyError, TypeError):
            continue
    return out


PLOT_W = 300  # the SVG's width in px (it scales down with the page: max-width 100%)
PLOT_H = 80  # the plot area's height
PLOT_LEFT, PLOT_RIGHT = 34, 12  # margins: the percent labels left of the plot; room for the last tick
FONT_PX = 9
CHAR_W = 5.6  # a generous average advance of DejaVu Sans at 9 px (digits 5.7, lower case about 5.3)
ASCENT, DESCENT = 8.4, 2.2  # DejaVu Sans at 9 px: above and below the baseline (0.928 and 0.236 em)
LINE_H = 12  # one row of labels


def text_width(text: str) -> float:
    """An upper estimate of the width of ``text`` in the plot's font (no layout engine here)."""
    return len(text) * CHAR_W


def _row_baseline(row: int) -> int:
    """The baseline of row ``row`` of budget names above the plot."""
    return 10 + LINE_H * row


def seconds(t: float) -> str:
    """'0 s', '3.28 s', '208 s', '1283 s': three significant digits, never an exponent."""
    text = f"{t:.3g}"
    return f"{text if 'e' not in text else f'{t:.0f}'} s"


def _wrap(head: str, items: list[str], width: float) -> list[str]:
    """``head`` then the items joined by ', ', in lines of at most ``width``; an item is never split."""
    lines = [head]
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if text_width(lines[-1] + " " + piece) <= width:
            lines[-1] += " " + piece
        else:
            lines.append(piece)
    return lines


def progress_svg(run: dict[str, Any], budget: dict[str, Any]) -> str:
    """monitor.txt progress over the run as an inline SVG: every sample as a step inside the plot area, with axes
    (percent, seconds) and the first-progress and total time budgets as dashed marks; a single update still shows
    as a point and a level line.

    No text is ever drawn inside the plot area, so the line can cross none: the budget marks are named in rows
    above the plot (over their line, shifted into the picture, a second row when two names would overlap), the
    percent labels sit left of it, the seconds below it (the last one anchored at its end, so it is never cut), and
    the last state and the budgets beyond the run's time go in lines under the axis. Widths are estimated on the
    generous side (:data:`CHAR_W`) and every label is kept inside the picture."""
    xs = _progress_points(run.get("progress") or [])
    duration = float(run.get("duration_s") or 0.0)
    if not xs:
        return "<em>no parsable progress line</em>"
    w, left, pw, ph = PLOT_W, PLOT_LEFT, PLOT_W - PLOT_LEFT - PLOT_RIGHT, PLOT_H
    span = max(duration, xs[-1][0], 0.001) * 1.04

    def x(t: float) -> float:
        return left + min(1.0, max(0.0, t / span)) * pw

    marks: list[tuple[float, str, str]] = []  # (x, label, colour) of the budgets inside the time axis
    beyond: list[str] = []
    for key, label, colour in (("first_progress_s", "first progress", "#c79200"), ("total_s", "total", "#c53030")):
        limit = budget.get(key)
        if not isinstance(limit, (int, float)) or isinstance(limit, bool):
            continue
        if limit <= span:
            marks.append((x(limit), f"{label} {seconds(limit)}", colour))
        else:
            beyond.append(f"{label} {seconds(limit)}")
    rows: list[list[tuple[float, float]]] = []  # per row of budget names: the x-extents taken
    named: list[tuple[int, float, float, str, str]] = []  # (row, x0, line x, text, colour)
    for mx, text, colour in marks:
        tw = text_width(text)
        x0 = min(max(mx - tw / 2, 1.0), w - 1.0 - tw)
        for r, taken in enumerate(rows):
            if all(x0 + tw + 4 <= a or x0 >= b + 4 for a, b in taken):
                break
        else:
            rows.append([])
            r = len(rows) - 1
        rows[r].append((x0, x0 + tw))
        named.append((r, x0, mx, text, colour))
    # the plot area starts under the rows of names, low enough for the 100% label (its baseline 3 px under the top)
    top = _row_baseline(len(rows) - 1) + 8 if rows else 7
    axis = top + ph
    last_t, last_v, last_state = xs[-1]
    footer = [f"last {last_v * 100:.0f}% {STATES.get(last_state, 'state ' + last_state)} at {seconds(last_t)}"]
    if beyond:
        footer += _wrap("budgets beyond the run:", beyond, w - 2)
    h = axis + 12 + LINE_H * len(footer) + 3

    def y(v: float) -> float:
        return top + (1.0 - v) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="progress of run {_e(run.get("id"))}" font-family="DejaVu Sans,sans-serif" '
             f'font-size="{FONT_PX}">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#f7f9fc" stroke="#c9d1de"/>']
    for frac in (0.0, 0.5, 1.0):  # y axis: percent, left of the plot
        yy = y(frac)
        parts.append(f'<line x1="{left - 3}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#e1e6ee"/>'
                     f'<text x="{left - 5}" y="{yy + 3:.1f}" text-anchor="end" fill="#5d6678">{frac * 100:.0f}%</text>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):  # x axis: seconds, below the plot
        tx = x(span * frac)
        parts.append(f'<line x1="{tx:.1f}" y1="{axis}" x2="{tx:.1f}" y2="{axis + 3}" stroke="#5d6678"/>'
                     f'<text x="{tx:.1f}" y="{axis + 12}" text-anchor="{anchor}" fill="#5d6678">'
                     f'{seconds(span * frac)}</text>')
    for r, x0, mx, text, colour in named:  # budget marks: the dashed line in the plot, its name above it
        ty = _row_baseline(r)
        parts.append(f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{axis}" stroke="{colour}" '
                     f'stroke-dasharray="4 3"><title>{_e(text)} budget</title></line>'
                     f'<text x="{x0:.1f}" y="{ty}" fill="{colour}">{_e(text)}</text>')
    end = max(duration, xs[-1][0])
    pts = [f"{x(xs[0][0]):.1f},{y(xs[0][1]):.1f}"]
    for (_, v0, _), (t1, v1, _) in zip(xs, xs[1:]):
        pts.append(f"{x(t1):.1f},{y(v0):.1f}")
        pts.append(f"{x(t1):.1f},{y(v1):.1f}")
    pts.append(f"{x(end):.1f},{y(xs[-1][1]):.1f}")
    parts.append(f'<polyline fill="none" stroke="#2b6cb0" stroke-width="2" points="{" ".join(pts)}"/>')
    colour = {"3": "#17622b", "4": "#c53030"}.get(last_state, "#2b6cb0")
    for t, v, _ in xs[:1] + xs[-1:]:
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    for i, line in enumerate(footer):
        parts.append(f'<text x="1" y="{axis + 12 + LINE_H * (i + 1)}" fill="{"#1d2330" if i == 0 else "#8a92a3"}">'
                     f'{_e(line)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------------


def _banner(data: dict[str, Any]) -> str:
    """One box per judged release: the conformance verdict (large), the platform's answer, whether it gates the
    exit status, and the rules broken; the same words as report.json ``verdicts[].words``."""
    out = ['<div class="banner">']
    for v in data.get("verdicts", []) or [{"release": r, "verdict": "untested"} for r in data.get("releases", [])]:
        must = sorted({m.split(" ")[0] for img in data.get("images", []) for r in img.get("compatibility", [])
                       if r["release"] == v["release"] for m in r["must"]})
        should = sorted({s for img in data.get("images", []) for r in img.get("compatibility", [])
                         if r["release"] == v["release"] for s in r["should"]})
        detail = (f"MUST broken: {_e(', '.join(must))}" if must else
                  f"SHOULD broken: {_e(', '.join(should))}" if should else "")
        gated = " gated" if v.get("gated") else ""
        accepts = ACCEPTS_WORDS[v.get("platform_accepts")] if v["verdict"] != "untested" else "untested"
        out.append(f'<div class="rel {_cls(v["verdict"])}{gated}" data-release="{_e(v["release"])}" '
                   f'title="{_e(v.get("words", v["verdict"]))}">'
                   f'<div class="r">platform {_e(v["release"])} &middot; {"gated" if gated else "not gating"}</div>'
                   f'<div class="v">{_e(v["verdict"])}</div>'
                   f'<div class="a">{_e(accepts)}</div>'
                   f'<div class="m">{detail}</div></div>')
    out.append("</div>")
    return "".join(out)


def _verdict_table(data: dict[str, Any], img: dict[str, Any]) -> str:
    """Per release: gated, the platform's answer, the conformance verdict, the rules broken."""
    gate = set(data.get("settings", {}).get("gate") or data.get("releases", []))
    out = ['<div class="scroll"><table class="verdicts stack"><tr><th>platform release</th><th>gated</th>'
           "<th>platform accepts</th><th>verdict</th><th>MUST broken</th><th>SHOULD broken</th></tr>"]
    for row in img.get("compatibility", []):
        accepts = row.get("platform_accepts")
        plat = ", ".join(row.get("platform_must") or [])
        cell = "yes" if accepts is True else f"no ({_e(plat)})" if accepts is False else "&ndash;"
        out.append(f"<tr><td>{_e(row['release'])}</td><td>{'yes' if row['release'] in gate else 'no'}</td>"
                   f"<td>{cell}</td><td>{_pill(row['verdict'])}<br><small>{_e(row.get('words', ''))}</small></td>"
                   f"<td>{_e(', '.join(row['must'])) or '&ndash;'}</td>"
                   f"<td>{_e(', '.join(row['should'])) or '&ndash;'}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def _identity(img: dict[str, Any]) -> str:
    tasks = img.get("declared_tasks") or {}
    declared = "; ".join(f"{ot.replace('_', ' ')}: {_words(list(ts)) or 'none'}" for ot, ts in tasks.items())
    types = _words([OBJECT_TYPE_NAMES.get(int(t), str(t)) for t in img.get("object_types", [])])
    digests = img.get("repo_digests")
    if digests is None:
        digest = "not recorded"
    else:
        digest = "<br>".join(f"<code>{_e(d)}</code>" for d in digests) or "none (a local build, never pushed)"
    command = " ".join(shlex.quote(a) for a in [*(img.get("entrypoint") or []), *(img.get("cmd") or [])])
    rows = [("tag", f"<code>{_e(img['image'])}</code>"), ("image id", f"<code>{_e(img.get('image_id'))}</code>"),
            ("digest", digest), ("size", _e(_size(img.get("size_bytes")))),
            ("object types", _e(types or "none")), ("declared tasks", _e(declared or "none")),
            ("start command", f"<code>{_e(command)}</code>" if command else "none (LC-02)")]
    for note in img.get("notes") or []:
        rows.append(("note", _e(note)))
    return ('<div class="scroll"><table class="kv">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table></div>")


def _runs(data: dict[str, Any], image: str) -> str:
    budget = data.get("settings", {}).get("budget") or {}
    out = ['<div class="scroll"><table class="runs stack"><tr><th>run</th><th>exit</th><th>time</th><th>progress</th>'
           "<th>what the run read</th></tr>"]
    for run in data.get("runs", []):
        if run.get("image", image) != image:
            continue
        rid = _e(run["id"])
        kind = _e(" ".join(str(run[k]) for k in ("kind", "export_format") if run.get(k)))
        if "skipped" in run:
            out.append(f'<tr class="skip"><td>{rid}<br><small>{kind}</small></td><td class="exit">not run</td>'
                       f'<td colspan=3>{_e(run["skipped"])}</td></tr>')
            continue
        failed = bool(run.get("timed_out")) or run.get("exit_code") != 0
        status = "timed out" if run.get("timed_out") else f"exit {run.get('exit_code')}"
        if failed:
            status = "&#10007; " + _e(status)
        diag = f"<br><small>{_e('; '.join(run['diagnosis']))}</small>" if run.get("diagnosis") else ""
        timing = run.get("progress_timing") or {}
        first = timing.get("first_update_s")
        when = (f"<br><small>first progress {first:.2f} s, {int(timing.get('updates') or 0)} updates</small>"
                if isinstance(first, (int, float)) else "<br><small>no progress update</small>")
        inputs = counts_line(run.get("inputs_opened") or {})
        read = _e(inputs) if inputs else "<em>not recorded</em>"
        out.append(f'<tr class="{"bad" if failed else "ok"}"><td>{rid}<br><small>{kind}, inputs of '
                   f'{_e(run.get("inputs_release", ""))}, user {_e(run.get("user", ""))}</small></td>'
                   f'<td class="exit">{status if failed else _e(status)}{diag}</td>'
                   f'<td>{float(run.get("duration_s") or 0):.1f} s{when}</td>'
                   f'<td>{progress_svg(run, budget)}</td><td>{read}</td></tr>')
    out.append("</table></div>")
    return "".join(out)


def _findings(data: dict[str, Any], image: str, runs: dict[str, dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in data.get("findings", []):
        if f.get("image") == image:
            groups.setdefault((f["level"], f["rule"]), []).append(f)
    if not groups:
        return "<p>No rule was broken.</p>"
    titles = {fd["rule"]: fd.get("title", "") for j in data.get("judgements", []) for fd in j["findings"]}
    out = []
    for (level, rule), fs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "MUST", kv[0][1])):
        releases = sorted({r for f in fs for r in f["releases"]}, key=lambda r: tuple(int(x) for x in r.split(".")))
        basis = fs[0].get("basis") or ""
        out.append(f'<div class="rule {level}box" id="rule-{_e(rule)}"><h3><span class="{level}">{_e(rule)} '
                   f'{_e(level)}</span> {_e(titles.get(rule, ""))}'
                   f'{f"<span class=basis>{_e(basis)}</span>" if basis else ""}</h3>'
                   f'<div class="sub">{len(fs)} location{"s" if len(fs) != 1 else ""}, platform '
                   f'{_e(_words(releases))}{"; basis " + _e(basis) + ": " + _e(_basis_reason(rule)) if basis else ""}'
                   f'</div>')
        fixes = list(dict.fromkeys(f["fix"] for f in fs if f.get("fix")))
        for fix in fixes:
            out.append(f'<div class="fix"><strong>Fix:</strong> {_e(fix)}</div>')
        out.append('<div class="scroll"><table class="loc stack"><tr><th>run</th><th>where</th><th>what</th><th>found</th>'
                   "<th>expected</th></tr>")
        for f in fs:
            where = (f.get("file") or "") + (f":{f['where']}" if f.get("where") else "")
            lost = f"<br><small>silently lost by the platform: {_e(f['lost'])}</small>" if f.get("lost") is not None else ""
            lost += "".join(f"<br><small>consequence of the same failure: {_e(c)}</small>" for c in f.get("context") or [])
            out.append(f"<tr><td>{_e(f['run'])}</td><td><code>{_e(where or '-')}</code></td><td>{_e(f['message'])}"
                       f"{lost}</td><td>{_e(f.get('found') or '-')}</td><td>{_e(f.get('expected') or '-')}</td></tr>")
        out.append("</table></div>")
        for run_id in dict.fromkeys(f["run"] for f in fs):
            excerpt = ((runs.get(run_id) or {}).get("error_excerpt") or {}).get("lines") or []
            if excerpt:  # the real error first, wherever the log printed it
                out.append(f"<div class=sub>error found in the log of run {_e(run_id)}</div>"
                           f"<pre>{_e(chr(10).join(excerpt))}</pre>")
            tail = (runs.get(run_id) or {}).get("log_tail") or []
            if tail:
                log = runs[run_id].get("log_file")
                out.append(f"<div class=sub>log tail of run {_e(run_id)}"
                           f"{' (whole log: ' + _e(log) + ')' if log else ''}</div><pre>{_e_lines(tail)}</pre>")
        out.append("</div>")
    return "".join(out)


def _basis_reason(rule: str) -> str:
    from ..contracts.basis import reason_of

    return reason_of(rule)


def _catalogue() -> dict[str, tuple[str, Any]]:
    """rule -> (title, Check) of every rule the suite knows, or {} when the catalogue cannot be loaded."""
    try:
        from ..contracts import REGISTRY, load_all
        from ..image import IMAGE_CHECKS

        load_all()
        return {c.rule: (c.title, c) for c in [*IMAGE_CHECKS.values(), *REGISTRY.values()]}
    except Exception:  # noqa: BLE001 - the certificate still renders from the data alone
        return {}


def _rules_checked(data: dict[str, Any], image: str) -> str:
    releases = list(data.get("releases", []))
    status: dict[tuple[str, str], set[str]] = {}
    titles: dict[str, str] = {}
    for j in data.get("judgements", []):
        if j["image"] != image:
            continue
        for f in j["findings"]:
            status.setdefault((f["rule"], j["release"]), set()).add(f["status"])
            titles.setdefault(f["rule"], f.get("title", ""))
    catalogue = _catalogue()
    rules = list(dict.fromkeys([*catalogue, *sorted(titles)]))
    counts = {r: {"pass": 0, "fail": 0, "n/a": 0, "not evaluated": 0} for r in releases}
    body = []
    for rule in rules:
        cells = []
        for rel in releases:
            st = status.get((rule, rel), set())
            if "failed" in st:
                word, css = "fail", "fail"
            elif "passed" in st:
                word, css = "pass", "pass"
            elif "not-evaluated" in st or "consequence" in st:  # consequence: listed under V1
                word, css = "not evaluated", "ne"
            else:
                word, css = "n/a", "na"
            counts[rel][word] += 1
            cells.append(f'<td class="{css}">{word}</td>')
        title = titles.get(rule) or (catalogue[rule][0] if rule in catalogue else "")
        body.append(f"<tr><td><code>{_e(rule)}</code></td><td>{_e(title)}</td><td>{_e(basis_of(rule))}</td>"
                    f"{''.join(cells)}</tr>")
    head = "".join(f"<th>platform {_e(r)}</th>" for r in releases)
    total = "".join(f"<td><strong>{c['pass']} passed</strong>, {c['fail']} failed, {c['not evaluated']} not "
                    f"evaluated, {c['n/a']} n/a</td>" for c in counts.values())
    return (f'<div class="scroll"><table class="rules"><tr><th>rule</th><th>what it checks</th><th>basis</th>{head}'
            f"</tr><tr><td colspan=3><strong>total ({len(rules)} rules)</strong></td>{total}</tr>{''.join(body)}"
            "</table></div>")


def reproduce_command(data: dict[str, Any]) -> str:
    """The command of the session as recorded (``command``), else one rebuilt from its settings."""
    cmd = data.get("command")
    if isinstance(cmd, list) and cmd:
        return " ".join(shlex.quote(str(a)) for a in cmd)
    s = data.get("settings", {})
    args = ["pytest", *(f"--image={img['image']}" for img in data.get("images", [])),
            f"--ymir-profile={s.get('profile')}", f"--ymir-seed={s.get('seed')}",
            f"--ymir-platform={','.join(data.get('releases', []))}"]
    if s.get("gpu_ids"):
        args.append(f"--ymir-gpus={','.join(s['gpu_ids'])}")
    args += [f"--ymir-set={p}" for p in s.get("hyper_params") or []]
    if s.get("dataset_size"):
        args.append("--ymir-dataset-size=" + ",".join(f"{k}={v}" for k, v in s["dataset_size"].items()))
    return " ".join(shlex.quote(a) for a in args)


def _inputs_tried(data: dict[str, Any], image: str) -> str:
    """The input-space searches (--ymir-fuzz) of one image: count, coverage, and the minimal reproducer."""
    rows = []
    for r in data.get("fuzz", []):
        if r.get("image") != image:
            continue
        cov = r.get("coverage") or {}
        covered = "; ".join(x for x in (
            "modes " + ", ".join(f"{k} {v}" for k, v in cov.get("modes", {}).items()) if cov.get("modes") else "",
            "formats " + ", ".join(cov.get("formats", {})) if cov.get("formats") else "",
            (f"sizes {cov['smallest'][0]}×{cov['smallest'][1]} to {cov['largest'][0]}×{cov['largest'][1]} px"
             if cov.get("smallest") else ""),
            "EXIF orientations " + ", ".join(map(str, cov["orientations"])) if cov.get("orientations") else "",
            "boxes " + ", ".join(cov.get("box_kinds", {})) if cov.get("box_kinds") else "") if x)
        f = r.get("failure")
        if r.get("skipped"):
            outcome = f"not run: {_e(r['skipped'])}"
        elif f:
            outcome = (f"{_pill('not conformant')} {_e(', '.join(f['rules']))}: <b>{_e(f['input'])}</b>: "
                       f"{_e(f['headline'])}<br>found at input {_e(f['found_at'])}, shrunk in {_e(f['shrink_runs'])} "
                       "run(s)" + (f"<br>rebuild: <code>{_e(f['rebuild'])}</code><br>run: <code>{_e(f['docker'])}</code>"
                                   if f.get("rebuild") else ""))
        else:
            outcome = "no failure"
        rows.append(f"<tr><td>{_e(r['search'])} ({_e(r['run_kind'])})</td><td>{_e(r['tried'])} of {_e(r['examples'])}"
                    f"{' (budget spent)' if r.get('budget_spent') else ''}</td><td>{_e(covered)}</td>"
                    f"<td>{outcome}</td></tr>")
    return ('<div class="scroll"><table class="fuzz stack"><tr><th>search</th><th>inputs tried</th><th>covered</th>'
            "<th>outcome</th></tr>" + "".join(rows) + "</table></div>")


def render_certificate(data: dict[str, Any]) -> str:
    tool = data.get("tool", {})
    settings = data.get("settings", {})
    runs = {r["id"]: r for r in data.get("runs", [])}
    images = data.get("images", [])
    out = ['<!doctype html><html lang=en><head><meta charset=utf-8>'
           '<meta name="viewport" content="width=device-width, initial-scale=1">'
           '<title>YMIR executor conformance certificate'
           f'{": " + _e(images[0]["image"]) if len(images) == 1 else ""}</title><style>{CSS}</style></head>'
           '<body><main>']
    out.append("<h1>YMIR executor conformance certificate</h1>")
    out.append(f'<p class="sub">{_e(tool.get("name"))} {_e(tool.get("version"))} &middot; generated '
               f'{_e(data.get("generated_at"))} &middot; profile {_e(settings.get("profile"))} &middot; seed '
               f'{_e(settings.get("seed"))} &middot; user {_e(settings.get("user"))} &middot; '
               f'{"GPUs " + _e(",".join(settings.get("gpu_ids", []))) if settings.get("gpu_ids") else "CPU mode"}'
               f' &middot; {_e(data.get("container_runs"))} container runs</p>')
    if settings.get("hyper_params"):
        out.append(f'<p class="sub">hyper-parameters set: {_e(", ".join(settings["hyper_params"]))}</p>')
    out.append(_banner(data))
    for img in images:
        out.append(f'<p class="summary">{_e(img["image"])}: {_e(verdict_sentence(img))}</p>')
    for img in images:
        name = img["image"]
        out.append(f"<h2>{_e(name)}</h2><h3>Image</h3>{_identity(img)}")
        out.append(_verdict_table(data, img))
        out.append(f"<h3>Task runs</h3>{_runs(data, name)}")
        out.append(f"<h3>Findings</h3>{_findings(data, name, runs)}")
        if any(r.get("image") == name for r in data.get("fuzz", [])):
            out.append(f"<h3>Inputs tried</h3>{_inputs_tried(data, name)}")
        out.append(f"<h3>Rules checked</h3>{_rules_checked(data, name)}")
    budget = settings.get("budget") or {}
    out.append("<h2>How to reproduce</h2><p>With the same image id in the local engine (nothing is pulled), this "
               f"command generates the same synthetic data (seed {_e(settings.get('seed'))}) and runs the same "
               f"containers:</p><pre>{_e(reproduce_command(data))}</pre>"
               f'<p class="sub">time budgets: total {_e(budget.get("total_s"))} s, first progress '
               f'{_e(budget.get("first_progress_s"))} s, heartbeat {_e(budget.get("heartbeat_s"))} s; '
               f'exit status {_e(data.get("exit_status"))}</p>')
    out.append("</main></body></html>")
    return "\n".join(out)
