"""Driving the platform oracle (oracle.py in a platform venv) and comparing file trees, with the allow-list."""
from __future__ import annotations

import atexit
import fnmatch
import json
import os
import re
import select
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ORACLE = Path(__file__).with_name("oracle.py")
ALLOWED = Path(__file__).with_name("allowed.yaml")
DEFAULT_RELEASES = "2.3.0,1.1.0"
REQUIRE_ORACLE = os.environ.get("YMIR_REQUIRE_ORACLE") == "1"


def venv_python(release: str) -> Path:
    return REPO / ".venvs" / f"ymir-cmd-{release}" / "bin" / "python"


class Oracle:
    """One platform release's own code in a long-lived subprocess (``oracle.py --serve``: a JSON line in, a JSON
    line out), started on first use and restarted if it dies: the platform's imports cost about a second."""

    TIMEOUT_S = 300

    def __init__(self, release: str) -> None:
        self.release = release
        self.python = venv_python(release)
        major_minor = tuple(int(p) for p in release.split(".")[:2])
        self.legacy = major_minor < (2, 0)
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._stderr = tempfile.TemporaryFile(mode="w+")
            self._proc = subprocess.Popen([str(self.python), str(ORACLE), "--serve"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
                                          env={**os.environ, "PYTHONPATH": "", "PYTHONWARNINGS": "ignore"})
        return self._proc

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return str(self._stderr.read())[-3000:]

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None

    def call(self, op: str, **req: Any) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        if self._stderr is not None:  # keep only this call's platform log for the error message
            self._stderr.seek(0)
            self._stderr.truncate()
        try:
            proc.stdin.write(json.dumps({"op": op, **req}) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self.TIMEOUT_S)
            line = proc.stdout.readline() if ready else ""
        except BrokenPipeError:
            line = ""
        if not line.strip():
            rc = proc.poll()
            if rc is None:
                proc.kill()
            self._proc = None
            raise AssertionError(f"oracle {self.release} {op} died or hung (rc {rc}):\n{self._stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise AssertionError(f"oracle {self.release} {op} failed: {reply.get('error')}\n{reply.get('traceback', '')}")
        return reply


_ORACLES: dict[str, Oracle] = {}


@atexit.register
def _close_oracles() -> None:
    for oracle in _ORACLES.values():
        oracle.close()


def get_oracle(release: str) -> Oracle:
    """The oracle for ``release`` (one per process); a missing venv fails with YMIR_REQUIRE_ORACLE=1 and skips
    otherwise."""
    if not venv_python(release).exists() or not (venv_python(release).parents[1] / ".ymir-oracle-ok").exists():
        msg = f"no platform venv for ymir-cmd {release}: run scripts/platform-venv {release}"
        if REQUIRE_ORACLE:
            pytest.fail(msg + " (YMIR_REQUIRE_ORACLE=1: the differential tests may not be skipped)", pytrace=False)
        pytest.skip(msg)
    if release not in _ORACLES:
        _ORACLES[release] = Oracle(release)
    return _ORACLES[release]


def releases(config: pytest.Config) -> list[str]:
    value = config.getoption("--ymir-oracle-releases", default=None) or os.environ.get("YMIR_ORACLE_RELEASES")
    return [r.strip() for r in (value or DEFAULT_RELEASES).split(",") if r.strip()]


# ------------------------------------------------------------------------------------------------------------
# Tree snapshots and their differences
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: str  # file | dir | link
    mode: int
    target: str = ""  # links: where they point, the tree root replaced by <root>
    data: bytes = b""


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Entry]:
    """Every path under ``root`` (links recorded as links, then followed so their content is compared too)."""
    out: dict[str, Entry] = {}
    work = str(root.parent)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if any(fnmatch.fnmatch(rel, s) for s in skip):
                continue
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = Entry("link", mode, os.readlink(path).replace(work, "<work>"))
                if os.path.isfile(path):  # a link to a file: its content under rel + "@"
                    out[rel + "@"] = Entry("file", stat.S_IMODE(os.stat(path).st_mode), data=Path(path).read_bytes())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Entry("dir", mode)
            else:  # host paths (candidate-src-index.tsv) name the work folder: compared relative to it
                out[rel] = Entry("file", mode, data=Path(path).read_bytes().replace(work.encode(), b"<work>"))
    return out


@dataclass(frozen=True)
class Diff:
    path: str
    aspect: str  # only-platform | only-suite | kind | mode | link | content
    detail: str

    def __str__(self) -> str:
        return f"{self.path} [{self.aspect}] {self.detail}"


def _structure_diffs(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Key-, order-, type- and value-level differences between two parsed documents."""
    out: list[str] = []
    if type(ours) is not type(theirs):
        return [f"{where or '.'}: type suite={type(ours).__name__} {ours!r:.80} platform={type(theirs).__name__} {theirs!r:.80}"]
    if isinstance(ours, dict):
        for k in theirs:
            if k not in ours:
                out.append(f"{where}.{k}: missing in suite (platform {theirs[k]!r:.80})")
        for k in ours:
            if k not in theirs:
                out.append(f"{where}.{k}: only in suite ({ours[k]!r:.80})")
        common = [k for k in ours if k in theirs]
        if common != [k for k in theirs if k in ours]:
            out.append(f"{where or '.'}: key order suite={common} platform={[k for k in theirs if k in ours]}")
        for k in common:
            out += _structure_diffs(ours[k], theirs[k], f"{where}.{k}")
    elif isinstance(ours, list):
        if len(ours) != len(theirs):
            out.append(f"{where}: length suite={len(ours)} platform={len(theirs)}")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            out += _structure_diffs(a, b, f"{where}[{i}]")
    elif ours != theirs:
        out.append(f"{where or '.'}: suite={ours!r:.80} platform={theirs!r:.80}")
    return out


def _content_diffs(rel: str, ours: bytes, theirs: bytes) -> list[str]:
    if ours == theirs:
        return []
    try:
        a, b = ours.decode(), theirs.decode()
    except UnicodeDecodeError:
        return [f"binary content differs ({len(ours)} vs {len(theirs)} bytes)"]
    parsed: list[str] = []
    try:
        if rel.endswith((".yaml", ".yml")):
            parsed = _structure_diffs(yaml.safe_load(a), yaml.safe_load(b))
        elif rel.endswith(".json"):
            parsed = _structure_diffs(json.loads(a), json.loads(b))
    except (ValueError, yaml.YAMLError):
        parsed = []
    if parsed:
        return parsed
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            col = next((j for j, (c, d) in enumerate(zip(x, y)) if c != d), min(len(x), len(y)))
            return [f"text line {i + 1} col {col}: suite={x[max(0, col - 30):col + 50]!r} "
                    f"platform={y[max(0, col - 30):col + 50]!r}"]
    return [f"text: suite has {len(la)} lines, platform {len(lb)} (first extra: {(la[len(lb):] or lb[len(la):])[0]!r:.100})"]


def compare_trees(ours: dict[str, Entry], theirs: dict[str, Entry]) -> list[Diff]:
    diffs: list[Diff] = []
    for rel in sorted(set(ours) | set(theirs)):
        a, b = ours.get(rel), theirs.get(rel)
        if a is None:
            assert b is not None
            diffs.append(Diff(rel, "only-platform", b.kind))
            continue
        if b is None:
            diffs.append(Diff(rel, "only-suite", a.kind))
            continue
        if a.kind != b.kind:
            diffs.append(Diff(rel, "kind", f"suite={a.kind} platform={b.kind}"))
            continue
        if a.mode != b.mode and a.kind != "link":
            diffs.append(Diff(rel, "mode", f"suite={a.mode:o} platform={b.mode:o}"))
        if a.target != b.target:
            diffs.append(Diff(rel, "link", f"suite={a.target} platform={b.target}"))
        for d in _content_diffs(rel, a.data, b.data):
            diffs.append(Diff(rel, "content", d))
    return diffs


# ------------------------------------------------------------------------------------------------------------
# The allow-list
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    path: str
    aspect: str
    detail: str
    reason: str
    pending: bool  # a known suite difference left for another file's owner: xfail, not pass
    when: dict[str, Any]

    def matches(self, diff: Diff, context: dict[str, Any]) -> bool:
        if not fnmatch.fnmatch(diff.path, self.path) or not fnmatch.fnmatch(diff.aspect, self.aspect):
            return False
        if self.detail and not re.search(self.detail, diff.detail):
            return False
        return all(context.get(k) in (v if isinstance(v, list) else [v]) for k, v in self.when.items())


def load_rules() -> list[Rule]:
    doc = yaml.safe_load(ALLOWED.read_text())
    rules = []
    for section, pending in (("allowed", False), ("pending", True)):
        for item in doc.get(section) or []:
            rules.append(Rule(item["id"], item["path"], item.get("aspect", "*"), item.get("detail", ""),
                              item["reason"], pending, item.get("when", {})))
    return rules


def classify(diffs: list[Diff], context: dict[str, Any]) -> tuple[list[Diff], dict[str, list[Diff]]]:
    """(differences the allow-list does not name, known pending ones by rule id)."""
    rules = load_rules()
    unexplained: list[Diff] = []
    pending: dict[str, list[Diff]] = {}
    for d in diffs:
        rule = next((r for r in rules if r.matches(d, context)), None)
        if rule is None:
            unexplained.append(d)
        elif rule.pending:
            pending.setdefault(rule.id, []).append(d)
    return unexplained, pending


def judge_diffs(diffs: list[Diff], context: dict[str, Any], what: str = "the suite's tree and the platform's",
                quiet_pending: bool = False) -> None:
    """Fail on any difference the allow-list does not name; xfail when only pending (known, reported) ones remain
    (``quiet_pending``: just return, e.g. inside a hypothesis example)."""
    unexplained, pending = classify(diffs, context)
    if unexplained:
        shown = "\n".join(f"  {d}" for d in unexplained[:40])
        more = f"\n  ... and {len(unexplained) - 40} more" if len(unexplained) > 40 else ""
        pend = f"\n(and known pending: {sorted(pending)})" if pending else ""
        pytest.fail(f"{len(unexplained)} difference(s) between {what} ({context}):\n{shown}{more}{pend}",
                    pytrace=False)
    if pending and not quiet_pending:
        lines = "; ".join(f"{k}: {v[0]}" + (f" (+{len(v) - 1})" if len(v) > 1 else "") for k, v in pending.items())
        pytest.xfail(f"known suite differences, not the differential's to fix (allowed.yaml 'pending'): {lines}")


def python_exe() -> str:
    return sys.executable
