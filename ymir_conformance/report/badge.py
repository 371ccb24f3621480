"""A shields-style ``badge.svg``: "YMIR <judged releases>" on the left, the verdict over them on the right
(``YMIR 2.1–2.5 | 2.4–2.5 conformant``), in the words of report.json ``verdicts``."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

COLOURS = {"conformant": "#2ea44f", "conformant with warnings": "#dfb317", "not conformant": "#e05d44",
           "not conformant (strict)": "#e05d44",
           "incomplete": "#9f9f9f", "untested": "#9f9f9f"}
WIDE = set("MWmw@%")
NARROW = set("il.,:;'|!()[] 1tfj")


def text_width(text: str) -> int:
    """An estimate of the width of ``text`` in 11px Verdana (what shields.io badges use), in pixels."""
    return round(sum(9.5 if c in WIDE else 4.0 if c in NARROW else 7.0 for c in text))


def render_badge(label: str, message: str, colour: str) -> str:
    lw, mw = text_width(label) + 12, text_width(message) + 12
    total = lw + mw
    label_e, message_e = html.escape(label), html.escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_e}: {message_e}"><title>{label_e}: {message_e}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{label_e}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{message_e}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{message_e}</text></g></svg>\n')


def _range(releases: list[str]) -> str:
    """'2.4–2.5' (an en dash between the ends of a run of releases)."""
    from ..platform import Release, describe

    return describe([Release.parse(r) for r in releases]).replace("-", "\u2013") if releases else "none"


def badge_text(rows: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(label, message, colour) for rows of {release, verdict, platform_accepts}: the judged range on the left
    ('YMIR 2.1–2.5'), on the right the verdict when every release has the same one, else the releases that are
    conformant ('2.4–2.5 conformant'), or what the platform says when none is."""
    if not rows:
        return "YMIR", "untested", COLOURS["untested"]
    releases = [r["release"] for r in rows]
    label = f"YMIR {_range(releases)}"
    verdicts = {str(r["verdict"]) for r in rows}
    if len(verdicts) == 1:
        verdict = verdicts.pop()
        if verdict == "not conformant" and all(r.get("platform_accepts") is True for r in rows):
            return label, "accepted by the platform, not conformant", COLOURS["not conformant"]
        return label, verdict, COLOURS.get(verdict, "#9f9f9f")
    ok = [r["release"] for r in rows if r["verdict"] in ("conformant", "conformant with warnings")]
    if len(ok) == len(rows):  # conformant everywhere, with warnings somewhere
        return label, "conformant with warnings", COLOURS["conformant with warnings"]
    if ok:  # conformant on some releases only
        return label, f"{_range(ok)} conformant", COLOURS["conformant with warnings"]
    if any(r["verdict"] in ("not conformant", "not conformant (strict)") for r in rows):
        return label, "not conformant", COLOURS["not conformant"]
    return label, "untested or incomplete", COLOURS["incomplete"]


def image_badge(image: dict[str, Any], releases: list[str] | None = None) -> str:
    """The badge of one image (an entry of report.json ``images``) over ``releases`` (default: every judged
    release)."""
    rows = [r for r in image.get("compatibility", []) if releases is None or r["release"] in releases]
    return render_badge(*badge_text(rows))


def release_badge(image: dict[str, Any], release: str) -> str:
    """The badge of one image on one release: 'YMIR 2.5' | its verdict."""
    return image_badge(image, [release])


def badge_name(image: str) -> str:
    return "badge-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in image).strip("._") + ".svg"


def write_badges(data: dict[str, Any], report_dir: Path) -> list[Path]:
    """``badge.svg`` (the session: the worst verdict per release over its images) and ``badge-<image>.svg`` per
    image, each over the judged range (``YMIR 2.1–2.5: 2.4–2.5 conformant``); with several releases also
    ``badge-<release>.svg`` (the session) per release."""
    written = []
    images = data.get("images", [])
    for img in images:
        path = report_dir / badge_name(img["image"])
        path.write_text(image_badge(img))
        written.append(path)
    if images:
        rows = [{"release": v["release"], "verdict": v["verdict"], "platform_accepts": v.get("platform_accepts")}
                for v in data.get("verdicts", [])]
        path = report_dir / "badge.svg"
        path.write_text(render_badge(*badge_text(rows)))
        written.append(path)
        if len(rows) > 1:
            for row in rows:
                path = report_dir / f"badge-{row['release']}.svg"
                path.write_text(render_badge(*badge_text([row])))
                written.append(path)
    return written


__all__ = ["badge_name", "badge_text", "image_badge", "release_badge", "render_badge", "text_width", "write_badges"]
