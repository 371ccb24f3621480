"""A self-contained HTML certificate (inline CSS and SVG, no external resources) rendered from report.json data."""
from __future__ import annotations

import html
from typing import Any

from ..audit import counts_line

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.sub{color:#667} table{border-collapse:collapse;width:100%;margin:.6rem 0} td,th{border:1px solid #dde;
padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem} th{background:#f3f5f9}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;font-size:.85rem}
.conformant{background:#d9f5df;color:#17622b} .conformant-with-warnings{background:#fff4cf;color:#7a5a00}
.not-conformant{background:#fde0e0;color:#8a1c1c} .incomplete,.untested{background:#e8e8ee;color:#444}
.MUST{color:#8a1c1c;font-weight:600} .SHOULD{color:#7a5a00;font-weight:600}
pre{background:#f6f7f9;padding:.5rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap}
details{margin:.3rem 0} summary{cursor:pointer}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _badge(verdict: str) -> str:
    return f'<span class="badge {verdict.replace(" ", "-")}">{_e(verdict)}</span>'


def _sparkline(points: list[dict[str, Any]], duration: float) -> str:
    """Progress over time as an inline SVG (percent parsed from each sampled line 1)."""
    xs: list[tuple[float, float]] = []
    for p in points:
        fields = str(p.get("line", "")).split("\t")
        try:
            xs.append((float(p["seen_s"]), float(fields[2])))
        except (IndexError, ValueError, KeyError):
            continue
    if not xs or duration <= 0:
        return "<em>no parsable progress</em>"
    w, h = 220, 40
    pts = " ".join(f"{min(w, t / duration * w):.1f},{h - max(0.0, min(1.0, v)) * h:.1f}" for t, v in xs)
    return (f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="progress">'
            f'<rect width="{w}" height="{h}" fill="#f3f5f9"/><polyline fill="none" stroke="#2b6cb0" '
            f'stroke-width="1.5" points="{pts}"/></svg>')


def render_certificate(data: dict[str, Any]) -> str:
    tool = data.get("tool", {})
    settings = data.get("settings", {})
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>ymir-conformance certificate</title>"
           f"<style>{CSS}</style></head><body>"]
    out.append("<h1>YMIR executor conformance certificate</h1>")
    out.append(f'<p class="sub">{_e(tool.get("name"))} {_e(tool.get("version"))} &middot; generated '
               f'{_e(data.get("generated_at"))} &middot; profile {_e(settings.get("profile"))} &middot; seed '
               f'{_e(settings.get("seed"))} &middot; user {_e(settings.get("user"))} &middot; '
               f'{"GPUs " + _e(",".join(settings.get("gpu_ids", []))) if settings.get("gpu_ids") else "CPU mode"}'
               f' &middot; platform releases {_e(", ".join(data.get("releases", [])))}</p>')
    for img in data.get("images", []):
        out.append(f"<h2>{_e(img['image'])}</h2>")
        out.append(f"<p>image id <code>{_e(img['image_id'])}</code>; object types "
                   f"{_e(img['object_types'])}; declared tasks {_e(img['declared_tasks'])}</p>")
        out.append(f"<p><strong>{_e(img['summary'])}</strong></p>")
        out.append("<table><tr><th>platform release</th><th>verdict</th><th>MUST broken</th><th>SHOULD broken</th></tr>")
        for row in img["compatibility"]:
            out.append(f"<tr><td>{_e(row['release'])}</td><td>{_badge(row['verdict'])}</td>"
                       f"<td>{_e(', '.join(row['must'])) or '&ndash;'}</td>"
                       f"<td>{_e(', '.join(row['should'])) or '&ndash;'}</td></tr>")
        out.append("</table>")
    out.append("<h2>Task runs</h2><table><tr><th>run</th><th>result</th><th>time</th><th>progress</th>"
               "<th>command</th></tr>")
    for run in data.get("runs", []):
        if "skipped" in run:
            out.append(f"<tr><td>{_e(run['id'])}</td><td colspan=4>not run: {_e(run['skipped'])}</td></tr>")
            continue
        status = "timed out" if run["timed_out"] else f"exit {run['exit_code']}"
        diag = f"<br><em>{_e('; '.join(run['diagnosis']))}</em>" if run.get("diagnosis") else ""
        tail = _e("\n".join(run.get("log_tail", [])))
        inputs = counts_line(run.get("inputs_opened") or {})
        if inputs:
            diag += f"<br><small>inputs opened: {_e(inputs)}</small>"
        out.append(f"<tr><td>{_e(run['id'])}</td><td>{_e(status)}{diag}</td><td>{run['duration_s']:.1f} s</td>"
                   f"<td>{_sparkline(run.get('progress', []), run['duration_s'])}</td>"
                   f"<td><details><summary>docker run &hellip;</summary><pre>{_e(' '.join(run.get('argv', [])))}"
                   f"</pre><pre>{tail}</pre></details></td></tr>")
    out.append("</table><h2>Findings</h2>")
    for j in data.get("judgements", []):
        failed = [f for f in j["findings"] if f["status"] == "failed"]
        if not failed:
            continue
        out.append(f"<h3>{_e(j['subject'])} &middot; {_e(j['area'])} &middot; platform {_e(j['release'])}</h3><ul>")
        for f in failed:
            for v in f["violations"]:
                out.append(f"<li><span class=\"{_e(v.get('level'))}\">{_e(v['rule'])} {_e(v.get('level'))}</span> "
                           f"{_e(v['message'])}" + (f"<br><small>at {_e(v.get('file', ''))}"
                           f"{':' + _e(v['where']) if v.get('where') else ''}</small>" if v.get('file') else "")
                           + (f"<br><small>fix: {_e(v['fix'])}</small>" if v.get("fix") else "") + "</li>")
        out.append("</ul>")
    out.append(f"<p class=sub>container runs: {_e(data.get('container_runs'))}</p></body></html>")
    return "\n".join(out)
