from __future__ import annotations

from hypothesis import given, strategies as st

from ymir_conformance.printable import CUT_MARKER, log_line, printable, strip_ansi


@given(st.text(alphabet=st.characters(codec=None), max_size=200))
def test_printable_output_is_always_printable(s: str) -> None:
    out = printable(s, limit=0)
    assert out.isprintable() or out == ""
    out.encode("utf-8")  # never a lone surrogate
    assert "\x1b" not in out and not any(0x80 <= ord(c) <= 0x9F for c in out)


@given(st.text(max_size=200))
def test_log_line_keeps_tabs_only(s: str) -> None:
    out = log_line(s, limit=0)
    assert all(c == "\t" or c.isprintable() for c in out)


def test_escapes_are_shown_not_dropped() -> None:
    assert printable("esc\x1b]0;PWNED-TITLE\x07.files[0]") == "esc\\x1b]0;PWNED-TITLE\\x07.files[0]"
    assert printable("evil\u202egp.pt") == "evil\\u202egp.pt"
    assert printable("key\ud800") == "key\\ud800"
    assert printable("c1\x9b31m") == "c1\\x9b31m"
    assert printable("new\nline") == "new\\x0aline"


def test_strip_ansi_removes_whole_sequences() -> None:
    assert strip_ansi("\x1b[1;31mError\x1b[0m: x") == "Error: x"
    assert strip_ansi("a\x1b]52;c;aGVsbG8=\x07b") == "ab"  # OSC 52 (clipboard), BEL-terminated
    assert strip_ansi("a\x1b]0;title\x1b\\b") == "ab"  # ST-terminated
    assert strip_ansi("a\x9b2Jb") == "ab"  # 8-bit CSI
    assert log_line("\x1b]0;unterminated") == "\\x1b]0;unterminated"  # an incomplete sequence stays visible


def test_cap_has_a_marker() -> None:
    assert printable("a" * 50, limit=10) == "a" * 10 + CUT_MARKER
    assert printable("\x1b" * 50, limit=8) == "\\x1b\\x1b" + CUT_MARKER
    assert printable(12.5) == "12.5"
