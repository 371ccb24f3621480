"""Text the image chose, made safe to show: the one renderer for the terminal, JUnit and the certificate.

The image under test picks file names, stage keys, class names, log lines and metric values. Printed raw, an ESC
sequence retitles or recolours the user's terminal, OSC 52 writes its clipboard, a bidi override (U+202E) makes
``evil.pt`` read as something else, and a lone surrogate (``"\\ud800"`` from a JSON key) crashes any encoder.

* :func:`strip_ansi` removes *complete* escape sequences (CSI, OSC, DCS/APC/PM/SOS strings, two-byte ESC
  sequences, and their 8-bit C1 forms). Use it on logs, where colours are noise, before :func:`printable`.
* :func:`printable` escapes every character that is not safe to print: C0 controls (tab kept only where asked),
  DEL, C1 controls, ESC, bidi controls and other format characters, lone surrogates and unassigned or private-use
  code points; the result is capped at ``limit`` characters with a visible marker. The output is pure printable
  text (``str.isprintable()`` holds for every character but an allowed tab), so it is safe for a terminal, an XML
  attribute or text node, and, after HTML escaping, the certificate.
"""
from __future__ import annotations

import re

CUT_MARKER = " [... cut]"
DEFAULT_LIMIT = 2000

# ESC-introduced sequences (7-bit) and their C1 (8-bit) equivalents, removed whole:
#   CSI  ESC [ or \x9b, parameters, intermediates, a final byte
#   OSC/DCS/SOS/PM/APC  ESC ] P X ^ _ or \x9d \x90 \x98 \x9e \x9f, a payload, ended by BEL or ST (ESC \ or \x9c)
#   two-byte  ESC followed by one byte in 0x20-0x7e (not the introducer of an unterminated string above)
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b(?![\[\]PX^_])[ -~]"
)


def strip_ansi(text: str) -> str:
    """``text`` without complete ANSI/ECMA-48 escape sequences (colours, cursor moves, titles, OSC 52)."""
    return _ANSI.sub("", text)


def _escape(ch: str) -> str:
    cp = ord(ch)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def printable(text: object, limit: int = DEFAULT_LIMIT, keep_tabs: bool = False, keep_newlines: bool = False) -> str:
    """``text`` (any object: ``str()`` of it) with every unsafe character shown escaped and the length capped.

    ``limit`` counts output characters (escapes included); 0 means no cap. ``keep_newlines`` keeps ``\\n`` (for
    the suite's own multi-line texts, e.g. a YAML example; never for a value the image chose, where a newline
    would forge a report line).
    """
    s = text if isinstance(text, str) else str(text)
    if s.isascii() and s.isprintable() and (not limit or len(s) <= limit):
        return s  # the common case, without a per-character loop
    out: list[str] = []
    size = 0
    for ch in s:
        # isprintable() is False for Cc (C0, DEL, C1), Cf (bidi), Cs (lone surrogates), Co, Cn, Zl, Zp, Zs but ' '
        keep = ch.isprintable() or (keep_tabs and ch == "\t") or (keep_newlines and ch == "\n")
        piece = ch if keep else _escape(ch)
        if limit and size + len(piece) > limit:
            out.append(CUT_MARKER)
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def printable_lines(text: object, limit: int = 0) -> str:
    """A multi-line text the suite composed around image-chosen parts (a failure message, a JUnit
    ``<system-out>``): line breaks and tabs kept, everything else unsafe escaped; ``limit`` caps the whole."""
    return printable(text, limit=limit, keep_tabs=True, keep_newlines=True)


def log_line(line: str, limit: int = DEFAULT_LIMIT) -> str:
    """A line of the image's log as it should be shown: colours removed, anything else unsafe escaped."""
    return printable(strip_ansi(line), limit=limit, keep_tabs=True)


__all__ = ["CUT_MARKER", "DEFAULT_LIMIT", "log_line", "printable", "printable_lines", "strip_ansi"]
