"""Checks as data: every rule of the contract is a :class:`Check` with its id, level per platform release,
the tasks and object types it applies to, and a function over a finished run that yields every violation.

A check function never raises for bad input from an image: files are read through :class:`RunView`, which
refuses symlinks and oversized files and turns parse errors into :class:`Artefact` problems that exactly one
check (the one owning the file) reports; every other check of that file is then skipped.
"""
from __future__ import annotations

import enum
import io
import os
import reprlib
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .. import guard
from ..errors import UnsafeOutput
from ..model import ObjectType, RunOutcome, Task
from ..platform import LATEST, RELEASES, Release, ReleaseRange
from ..printable import printable
from .basis import Basis, basis_of, reason_of

MAX_LINES_REPORTED = 5  # violations of one check beyond this are summarised in one line
START_COMMAND = "the image's start command"  # in fix texts; named with the image's real CMD by name_command()


def name_command(text: str, cmd: list[str], entrypoint: list[str]) -> str:
    """``text`` with :data:`START_COMMAND` followed by the image's real ENTRYPOINT + CMD, when known."""
    argv = [*entrypoint, *cmd]
    if not argv or START_COMMAND not in text:
        return text
    import shlex

    shown = " ".join(shlex.quote(printable(a, 200)) for a in argv)  # the image chose it: no line breaks, no escapes
    return text.replace(START_COMMAND, f"{START_COMMAND} (`{shown}`)")


class Level(enum.StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"


class Area(enum.StrEnum):
    """Contract areas, one module each under ``contracts/``."""

    IMAGE = "image"
    LIFECYCLE = "lifecycle"
    MONITOR = "monitor"
    TRAINING = "training"
    INFER = "infer"
    MINING = "mining"


ALL_TASKS = frozenset(Task)
ALL_OBJECT_TYPES = frozenset(ObjectType)
DETECTION_ONLY = frozenset({ObjectType.DETECTION})
COCO_TYPES = frozenset({ObjectType.SEMANTIC_SEGMENTATION, ObjectType.INSTANCE_SEGMENTATION, ObjectType.MULTI_MODAL})


_TEXT_LIMITS = {"message": 4000, "file": 1000, "where": 1000, "found": 2000, "expected": 2000, "fix": 4000}


@dataclass(frozen=True)
class Violation:
    """One thing wrong in one place. ``fix`` tells the image author what to change.

    Its text fields hold printable text only: whatever the image chose (a stage key with an ESC sequence, a
    class name with a bidi override, a lone surrogate) is shown escaped by :func:`ymir_conformance.printable.printable`
    when the violation is made, so every place that shows one (terminal, JUnit, report.json, certificate) shows
    the same safe text.
    """

    rule: str
    message: str
    file: str = ""  # container path, e.g. /out/models/result.yaml
    where: str = ""  # line number or key path
    found: str = ""
    expected: str = ""
    fix: str = ""
    lost: int | None = None  # for silent data loss: how many records the platform drops
    level: Level = Level.MUST  # filled in by the judge from the check's level for the release
    # findings of other rules that are consequences of this one (``Check.consequence_of``), as context lines
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, limit in _TEXT_LIMITS.items():
            value = getattr(self, name)
            # the suite's own examples and fixes span lines; what the image chose reaches them only through
            # short()/repr, which escapes line breaks
            safe = printable(value, limit, keep_newlines=name in ("expected", "fix"))
            if safe is not value and safe != value:
                object.__setattr__(self, name, safe)

    def render(self, with_fix: bool = True) -> str:
        loc = self.file + (f":{self.where}" if self.where else "") if self.file else self.where
        parts = [f"[{self.rule} {self.level}] {self.message}"]
        if loc:
            parts.append(f"    at: {loc}")
        if self.found:
            parts.append(f"    found: {self.found}")
        if self.expected:
            parts.append(f"    expected: {self.expected}")
        if self.lost is not None:
            parts.append(f"    silently lost by the platform: {self.lost}")
        for line in self.context:
            parts.append(f"    consequence of the same failure (not a failure of its own): {line}")
        if self.fix and with_fix:
            parts.append(f"    fix: {self.fix}")
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v not in ("", None, ())}
        d["level"] = str(self.level)
        if self.context:
            d["context"] = list(self.context)
        return d


def render_all(violations: list[Violation]) -> list[str]:
    """Render violations; a fix shared by consecutive violations of one rule is printed once, after the last."""
    out = []
    for i, v in enumerate(violations):
        nxt = violations[i + 1] if i + 1 < len(violations) else None
        same_fix_follows = nxt is not None and nxt.rule == v.rule and nxt.fix == v.fix
        out.append(v.render(with_fix=not same_fix_follows))
    return out

CheckFunc = Callable[["RunView"], Iterable[Violation]]


@dataclass(frozen=True)
class Check:
    """A rule of the contract, executable.

    ``levels`` maps release ranges to the level on those releases; releases in no range are not subject to
    the rule (the check is *not applicable* there).
    """

    rule: str
    title: str
    area: Area
    levels: tuple[tuple[ReleaseRange, Level], ...]
    func: CheckFunc
    tasks: frozenset[Task] = ALL_TASKS
    object_types: frozenset[ObjectType] = ALL_OBJECT_TYPES
    needs_success: bool = True  # judged only when the container exited 0 (output contracts)
    unless: Callable[[RunView], str] | None = None  # a reason this run cannot be judged by the rule, or ''
    # a rule (a key of CAUSES, e.g. "V1") whose failure this check's violations follow from: when that cause holds
    # for the run, they are listed under the cause's violation as context (Status.CONSEQUENCE), not failed
    consequence_of: str = ""

    def level_on(self, release: Release) -> Level | None:
        for span, level in self.levels:
            if release in span:
                return level
        return None

    def applies_to(self, view: RunView) -> bool:
        return bool(self.tasks & view.outcome.shape.tasks) and view.outcome.object_type in self.object_types

    @property
    def basis(self) -> Basis:
        """Why the rule exists (``contracts/basis.py``): platform, integrity or operations."""
        return basis_of(self.rule)

    @property
    def basis_reason(self) -> str:
        return reason_of(self.rule)

    @property
    def default_level(self) -> Level:
        return self.level_on(LATEST) or self.levels[-1][1]

    def describe_levels(self) -> str:
        return "; ".join(f"{lvl} on {span}" for span, lvl in self.levels)


REGISTRY: dict[str, Check] = {}


def check(
    rule: str,
    title: str,
    *,
    area: Area,
    level: Level | None = None,
    levels: dict[str, Level] | None = None,
    tasks: Iterable[Task] = ALL_TASKS,
    object_types: Iterable[ObjectType] = ALL_OBJECT_TYPES,
    needs_success: bool = True,
    unless: Callable[[RunView], str] | None = None,
    consequence_of: str = "",
) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check. Give ``level`` (all releases) or ``levels`` ({"2.1-2.3": MUST, "2.4+": SHOULD})."""
    if (level is None) == (levels is None):
        raise TypeError(f"{rule}: give exactly one of level= or levels=")
    spans = ((ReleaseRange.parse("all"), level),) if level is not None else tuple(
        (ReleaseRange.parse(k), v) for k, v in (levels or {}).items()
    )

    def register(func: CheckFunc) -> CheckFunc:
        if rule in REGISTRY:
            raise ValueError(f"check {rule} registered twice")
        REGISTRY[rule] = Check(
            rule=rule, title=title, area=area, levels=tuple((s, lv) for s, lv in spans if lv is not None),
            func=func, tasks=frozenset(tasks), object_types=frozenset(object_types), needs_success=needs_success,
            unless=unless, consequence_of=consequence_of,
        )
        return func

    return register


# --------------------------------------------------------------------------------------------------------
# Reading what the image wrote, defensively
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artefact:
    """A file the image wrote, read defensively: ``value`` is set when it parsed, else ``problem`` says why."""

    container_path: str
    exists: bool
    value: Any = None
    problem: str = ""
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.exists and not self.problem


def read_artefact(root: Path, rel: str, container_path: str, cap: int) -> Artefact:
    """Read a file the image wrote through the one guarded door (:mod:`ymir_conformance.guard`): no link
    followed at any component, regular files only, at most ``cap`` bytes, UTF-8."""
    try:
        text = guard.read_text(root, rel, cap)
    except UnsafeOutput as exc:
        return Artefact(container_path, exists=True, problem=exc.problem)
    except FileNotFoundError:
        return Artefact(container_path, exists=False, problem="the file does not exist")
    except OSError as exc:
        return Artefact(container_path, exists=True, problem=f"cannot be read: {exc.strerror or exc}")
    return Artefact(container_path, exists=True, value=text, text=text)


def parse_yaml(art: Artefact) -> Artefact:
    if not art.ok:
        return art
    try:
        value = guard.load_yaml(art.text)
    except UnsafeOutput as exc:
        return Artefact(art.container_path, True, problem=exc.problem, text=art.text)
    except yaml.YAMLError as exc:
        return Artefact(art.container_path, True, problem=f"is not valid YAML: {' '.join(str(exc).split())}",
                        text=art.text)
    return Artefact(art.container_path, True, value=value, text=art.text)


def parse_json(art: Artefact) -> Artefact:
    if not art.ok:
        return art
    try:
        value = guard.load_json(art.text)
    except UnsafeOutput as exc:
        return Artefact(art.container_path, True, problem=exc.problem, text=art.text)
    except ValueError as exc:  # also ints over Python's 4300-digit limit
        return Artefact(art.container_path, True, problem=f"is not valid JSON: {exc}", text=art.text)
    return Artefact(art.container_path, True, value=value, text=art.text)


def short(value: Any, limit: int = 120) -> str:
    """A value as a message shows it: repr, cut to ``limit`` characters."""
    text = _BOUNDED_REPR.repr(value)  # bounded: an aliased or huge YAML value must not explode here
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 4, 12, 12, 12, 12
    r.maxstring, r.maxother, r.maxlong = 400, 200, 60
    return r


_BOUNDED_REPR = _bounded_repr()


def index_lines(text: str) -> list[str]:
    return [ln.rstrip("\r") for ln in text.split("\n") if ln.strip()]


class RunView:
    """A finished run as the checks see it: the outcome plus lazily parsed artefacts and workspace facts."""

    def __init__(self, outcome: RunOutcome, release: Release = LATEST) -> None:
        self.outcome = outcome
        self.release = release

    # -- the workspace (/in) that was given ---------------------------------------------------------------
    def asset_location(self, container_path: str) -> tuple[Path, str]:
        """(host root, relative path) of an asset: in the asset cache the suite linked /in/assets to (which the
        image could write into), never by following the link."""
        rel = container_path.removeprefix("/in/").lstrip("/")
        if self.outcome.asset_cache is not None and rel.startswith("assets/"):
            return self.outcome.asset_cache, rel.removeprefix("assets/")
        return self.outcome.in_dir, rel

    def tensorboard_location(self) -> tuple[Path, str] | str:
        """(host root, relative path) of /out/tensorboard, or why it cannot be read.

        When the suite made /out/tensorboard a link to a host folder (2.x training, like the platform), the
        folder is read directly, provided the link is still the suite's; anything else the image put there is
        read only if it is a plain folder inside /out.
        """
        out = self.outcome.out_dir
        try:
            st = guard.lstat_beneath(out, "tensorboard")
        except UnsafeOutput as exc:
            return exc.problem
        if st is None:
            return "does not exist"
        tb = self.outcome.tensorboard_dir
        if stat.S_ISLNK(st.st_mode):
            if tb is not None and os.readlink(out / "tensorboard") == str(tb.resolve()):
                return tb, ""
            return (f"is a symlink (to {short(os.readlink(out / 'tensorboard'))}) that is not the folder the "
                    "platform linked there: the image replaced it")
        if not stat.S_ISDIR(st.st_mode):
            return f"is {guard.what_is(st.st_mode)}"
        return out, "tensorboard"

    def _in_yaml(self, name: str) -> dict[str, Any]:
        art = parse_yaml(read_artefact(self.outcome.in_dir, name, f"/in/{name}", guard.CAPS["result-yaml"]))
        return art.value if art.ok and isinstance(art.value, dict) else {}

    @cached_property
    def config(self) -> dict[str, Any]:
        return self._in_yaml("config.yaml")

    @cached_property
    def env(self) -> dict[str, Any]:
        return self._in_yaml("env.yaml")

    @cached_property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.config.get("class_names") or []]

    @cached_property
    def candidates(self) -> list[str]:
        """Container paths listed in /in/candidate-index.tsv (mining and infer runs)."""
        art = read_artefact(self.outcome.in_dir, "candidate-index.tsv", "/in/candidate-index.tsv",
                            guard.CAPS["mining-result"])
        return [ln.split("\t")[0] for ln in index_lines(art.text)] if art.ok else []

    @cached_property
    def candidate_sizes(self) -> dict[str, tuple[int, int]]:
        """basename -> (width, height) of each candidate image, read from /in/assets."""
        from PIL import Image

        sizes: dict[str, tuple[int, int]] = {}
        for cpath in self.candidates:
            root, rel = self.asset_location(cpath)
            try:
                data = guard.read_bytes(root, rel, guard.CAPS["asset"])
                with Image.open(io.BytesIO(data)) as im:
                    sizes[os.path.basename(cpath)] = im.size
            except Exception:  # a deliberately corrupt candidate, or one the image replaced: no size known
                continue
        return sizes

    @cached_property
    def ground_truth(self) -> dict[str, Any]:
        """basename -> {width, height, objects: [{class_name, box}]} of each candidate, when the suite made the
        workspace (``ground-truth.json`` beside in/, never shown to the image); {} for external runs."""
        art = parse_json(read_artefact(self.outcome.in_dir.parent, "ground-truth.json", "ground-truth.json",
                                       guard.CAPS["infer-result"]))
        return art.value if art.ok and isinstance(art.value, dict) else {}

    # -- what the image wrote (/out) ---------------------------------------------------------------------
    def read_out(self, container_path: str, kind: str) -> Artefact:
        """A file under /out, through the guarded door, capped at ``guard.CAPS[kind]``."""
        return read_artefact(self.outcome.out_dir, container_path.removeprefix("/out/"), container_path,
                             guard.CAPS[kind])

    @cached_property
    def monitor(self) -> Artefact:
        return self.read_out("/out/monitor.txt", "monitor")

    @cached_property
    def result_yaml(self) -> Artefact:
        return parse_yaml(self.read_out("/out/models/result.yaml", "result-yaml"))

    @cached_property
    def infer_result(self) -> Artefact:
        return parse_json(self.read_out("/out/infer-result.json", "infer-result"))

    @cached_property
    def mining_result(self) -> Artefact:
        return self.read_out("/out/result.tsv", "mining-result")

    @cached_property
    def log_problem(self) -> str:
        """Why /out/ymir-executor-out.log cannot be read safely ('' when it is a regular file or absent)."""
        try:
            fd, _ = guard.open_regular(self.outcome.out_dir, "ymir-executor-out.log")
        except FileNotFoundError:
            return ""
        except UnsafeOutput as exc:
            return exc.problem
        except OSError as exc:
            return f"cannot be read: {exc.strerror or exc}"
        os.close(fd)
        return ""

    @cached_property
    def log_lines(self) -> list[str]:
        """The executor log's last lines (at most its last ``CAPS['log-scan']`` bytes); [] when unsafe."""
        if self.log_problem:
            return []
        return guard.tail_lines(self.outcome.out_dir, "ymir-executor-out.log", 1_000_000, guard.CAPS["log-scan"])


# --------------------------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------------------------


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # violations found
    NOT_APPLICABLE = "not-applicable"  # the rule does not exist on this release / task / object type
    NOT_EVALUATED = "not-evaluated"  # the run did not get far enough to judge this rule
    CONSEQUENCE = "consequence"  # violated only as a consequence of another rule's failure: listed under it


@dataclass
class Finding:
    """The verdict of one check on one run, on one release."""

    check: Check
    status: Status
    level: Level | None
    violations: list[Violation] = field(default_factory=list)
    reason: str = ""

    def __post_init__(self) -> None:
        self.reason = printable(self.reason)  # may quote the image (e.g. why a run could not be judged)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.check.rule, "title": self.check.title, "area": str(self.check.area),
            "basis": str(self.check.basis), "status": str(self.status), "level": str(self.level) if self.level else None,
            "reason": self.reason, "violations": [v.to_json() for v in self.violations],
        }


def exit_failure(view: RunView) -> str:
    """Why V1 fails the run by its exit ('the container exited 1'), or '' (exit 0, never exited, timed out)."""
    o = view.outcome
    if o.succeeded or o.timed_out or o.exit_code is None or o.exit_code == 0:
        return ""
    return f"the container exited {o.exit_code}"


# rule -> when its failure holds for a run, why (''): the causes other checks can be consequences of
CAUSES: dict[str, Callable[[RunView], str]] = {"V1": exit_failure}
CONTEXT_CHARS = 300  # a consequence listed under its cause: its message cut to this many characters


def _run_check(chk: Check, view: RunView, level: Level) -> list[Violation]:
    try:
        found = list(chk.func(view))
    except Exception as exc:  # a bug in a check must not hide the others; report it loudly
        found = [Violation(chk.rule, f"internal error in ymir-conformance while checking: {exc!r}",
                           fix="report this to the ymir-conformance maintainers with the run's workspace")]
    return [Violation(**{**v.__dict__, "level": level}) for v in found]


def consequences(rule: str, view: RunView) -> list[str]:
    """The violations of every check marked ``consequence_of=rule`` on this run, as one context line each."""
    lines: list[str] = []
    for chk in sorted(REGISTRY.values(), key=rule_sort_key):
        level = chk.level_on(view.release)
        if chk.consequence_of != rule or level is None or not chk.applies_to(view):
            continue
        if chk.unless is not None and chk.unless(view):
            continue
        for v in _run_check(chk, view, level):
            lines.append(f"[{v.rule} {level}] {short(v.message, CONTEXT_CHARS)[1:-1]}")
    return lines


def evaluate(chk: Check, view: RunView, with_consequences: bool = True) -> Finding:
    """One check on one run. ``with_consequences`` (default): a check whose cause (``consequence_of``) holds is
    listed under the cause (Status.CONSEQUENCE), and the cause's first violation carries them as context."""
    level = chk.level_on(view.release)
    if level is None:
        return Finding(chk, Status.NOT_APPLICABLE, None, reason=f"rule not in platform {view.release}")
    if not chk.applies_to(view):
        return Finding(chk, Status.NOT_APPLICABLE, level, reason="not for this task or object type")
    unjudgeable = chk.unless(view) if chk.unless is not None else ""
    if unjudgeable:
        return Finding(chk, Status.NOT_APPLICABLE, level, reason=unjudgeable)
    off_declared = view.release in view.outcome.off_declared_on  # a format the image does not declare
    if chk.needs_success and not view.outcome.succeeded:
        why = "the container timed out" if view.outcome.timed_out else f"the container exited {view.outcome.exit_code}"
        if off_declared:  # the image does not read this format: its output rules do not apply (V1 says it failed)
            return Finding(chk, Status.NOT_APPLICABLE, off_declared_level(level), reason=(
                f"{why} on export_format {view.outcome.off_declared_format}, which the image does not declare"))
        return Finding(chk, Status.NOT_EVALUATED, level, reason=why)
    demoted = off_declared and level is Level.MUST
    if demoted:
        level = off_declared_level(level)
    violations = _run_check(chk, view, level)
    if demoted:
        violations = [Violation(**{**v.__dict__, "message": f"if a user switches export_format to "
                                   f"{view.outcome.off_declared_format} in the form, training fails: {v.message}"})
                      for v in violations]
    if not violations or not with_consequences:
        return Finding(chk, Status.FAILED if violations else Status.PASSED, level, violations)
    cause = CAUSES.get(chk.consequence_of) if chk.consequence_of else None
    why = cause(view) if cause is not None else ""
    if why:
        return Finding(chk, Status.CONSEQUENCE, level, violations,
                       reason=f"a consequence of {chk.consequence_of} ({why}): listed under {chk.consequence_of}, "
                              "not a failure of its own")
    if chk.rule in CAUSES and CAUSES[chk.rule](view):
        context = consequences(chk.rule, view)
        if context:
            violations[0] = Violation(**{**violations[0].__dict__, "context": tuple(context)})
    return Finding(chk, Status.FAILED, level, violations)


def off_declared_level(level: Level) -> Level:
    """The level of a rule on a training whose export format the image does not declare (its training template
    names another one): the platform trains on it only when a user edits export_format in the form, so what
    breaks there is a SHOULD (RunOutcome.off_declared_on)."""
    return Level.SHOULD


def judge(outcome: RunOutcome, release: Release = LATEST, areas: Iterable[Area] | None = None,
          with_consequences: bool = True) -> list[Finding]:
    """Run every registered check (optionally of some areas) over a finished run, for one platform release.
    ``with_consequences=False``: every violation fails its own rule (for runs whose failed exit is not judged,
    e.g. a negative input the image may refuse)."""
    from . import load_all

    load_all()
    view = RunView(outcome, release)
    wanted = set(areas) if areas is not None else set(Area)
    return [evaluate(c, view, with_consequences) for c in sorted(REGISTRY.values(), key=rule_sort_key)
            if c.area in wanted]


def judge_releases(outcome: RunOutcome, releases: Iterable[Release] = RELEASES) -> dict[Release, list[Finding]]:
    return {r: judge(outcome, r) for r in releases}


def rule_sort_key(c: Check) -> tuple[int, str, int]:
    prefix, _, num = c.rule.partition("-")
    order = ["IM", "LC", "V1", "BUD", "IN", "MON", "TR", "INF", "MIN"]
    digits = "".join(ch for ch in num if ch.isdigit())
    return (order.index(prefix) if prefix in order else 99, prefix, int(digits or 0))


def cap(violations: Iterator[Violation] | list[Violation], limit: int = MAX_LINES_REPORTED) -> Iterator[Violation]:
    """Yield at most ``limit`` violations of one kind, then one that counts the rest."""
    items = list(violations)
    yield from items[:limit]
    if len(items) > limit:
        first = items[0]
        yield Violation(first.rule, f"... and {len(items) - limit} more like the above", file=first.file,
                        expected=first.expected)
