"""The house stays tidy (issue 19): plugin.py holds the session's hooks and delegates, so it stays small, and no
class in it grows into a room of its own; the rooms are their own modules (README, Layout)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ymir_conformance"
PLUGIN_MAX_LINES = 300
CLASS_MAX_LINES = 150


def class_lengths(path: Path) -> dict[str, int]:
    """Every class in ``path`` (nested ones too) -> its lines, decorators included."""
    tree = ast.parse(path.read_text())
    return {node.name: node.end_lineno - min([d.lineno for d in node.decorator_list] + [node.lineno]) + 1
            for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.end_lineno is not None}


def test_plugin_is_thin() -> None:
    plugin = PACKAGE / "plugin.py"
    lines = len(plugin.read_text().splitlines())
    assert lines <= PLUGIN_MAX_LINES, f"plugin.py has {lines} lines (at most {PLUGIN_MAX_LINES}): move work to a room"
    big = {name: n for name, n in class_lengths(plugin).items() if n > CLASS_MAX_LINES}
    assert not big, f"classes over {CLASS_MAX_LINES} lines in plugin.py: {big}"


def test_the_limits_are_measured(tmp_path: Path) -> None:
    """The counter itself: a class's lines from its first decorator to its last line."""
    src = tmp_path / "m.py"
    src.write_text("import x\n\n\n@dec\nclass A:\n    def f(self):\n        pass\n\n    class B:\n        y = 1\n")
    assert class_lengths(src) == {"A": 7, "B": 2}
