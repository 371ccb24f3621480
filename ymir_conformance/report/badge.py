"""A shields-style ``badge.svg``: "YMIR <release>" on the left, the image's verdict on that release on the right."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

COLOURS = {"conformant": "#2ea44f", "conformant with warnings": "#dfb317", "not conformant": "#e05d44",
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


def image_badge(image: dict[str, Any], release: str | None) -> str:
    """The badge of one image (an entry of report.json ``images``) for ``release``."""
    row = next((r for r in image.get("compatibility", []) if r["release"] == release), None)
    verdict = str(row["verdict"]) if row else "untested"
    return render_badge(f"YMIR {release}" if release else "YMIR", verdict, COLOURS.get(verdict, "#9f9f9f"))




def badge_name(image: str) -> str:
    return "badge-" + "".join(c if c.isalnum() or c in "._-" else "_" for c in image).strip("._") + ".svg"


def write_badges(data: dict[str, Any], report_dir: Path) -> list[Path]:
    """``badge.svg`` (the session's only image, or the worst of several) and ``badge-<image>.svg`` per image,
    each showing the verdict on the target release (the newest gated one)."""
    from .html import target_release

    release = target_release(data)
    written = []
    images = data.get("images", [])
    for img in images:
        path = report_dir / badge_name(img["image"])
        path.write_text(image_badge(img, release))
        written.append(path)
    overall = next((v["verdict"] for v in data.get("verdicts", []) if v["release"] == release), None)
    if images:
        path = report_dir / "badge.svg"
        if len(images) == 1:
            path.write_text(image_badge(images[0], release))
        else:
            verdict = str(overall or "untested")
            path.write_text(render_badge(f"YMIR {release}", verdict, COLOURS.get(verdict, "#9f9f9f")))
        written.append(path)
    return written


__all__ = ["badge_name", "image_badge", "render_badge", "text_width", "write_badges"]
