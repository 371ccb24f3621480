"""Hypothesis as a search with shrinking, against the real container (``--ymir-fuzz``, ``--ymir-fuzz-training``).

Each example is one normal, fully judged, contained container run (:meth:`Conductor.run_custom`, through the
scheduler, so ``--ymir-jobs`` applies; never a diagnosis retry). An input *fails* when its run breaks a MUST
rule (V1 for a crash; INF-, MIN-, TR-, MON- ... for its outputs) on a gated release; a training run that refuses
its data cleanly (monitor state 4 with a 3000xx code, the reason last: the image's own validation) does not fail
V1. The first failure's rules are remembered, and while hypothesis shrinks only a run that breaks one of those
again counts as failing (another rule on a smaller input counts as passing), so the reproducer is for the bug
that was found.

Each search (candidates: infer and mining on one trained model; training) is sequential, as hypothesis is;
the searches of a session run at once, each in its own thread. ``--ymir-fuzz-budget`` bounds them all: after it
no new container starts, examples pass trivially and the search and its shrinking end at once. Hypothesis's
database lives under the workdir (``fuzz-db``), so the next session retries a failure first; the seed
(``--ymir-seed``) seeds every search.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import settings as hsettings
from hypothesis.database import DirectoryBasedExampleDatabase

from .. import guard
from ..contracts.base import Finding, Level, Status, judge, render_all
from ..hyper import edit_template
from ..image import ImageInfo
from ..model import Task
from ..options import Settings
from ..platform import Release
from ..printable import printable
from ..session import Conductor, RunRecord, RunSpec, plan
from ..workspace import Workspace
from . import render
from .case import CANDIDATES, TRAINING, FuzzCase, coverage
from .strategies import candidate_cases, training_cases

DB_DIR = "fuzz-db"
REPRODUCERS_DIR = "fuzz"
EXCEPTION_RE = re.compile(r"((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Warning))(?::\s*(.*))?")


class FuzzFailure(Exception):
    """An input failed with one of the first failure's rules (raised inside the hypothesis test only)."""


@dataclass(frozen=True)
class Target:
    """One search: an image's object type, candidates (infer/mining) or training, and the run it makes."""

    image: str
    search: str
    spec: RunSpec
    examples: int
    test_id: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.image, self.search, int(self.spec.object_type))


@dataclass
class Example:
    n: int  # 1-based, in the order the inputs were tried
    case: FuzzCase
    rules: frozenset[str]
    headline: str
    violations: list[str]
    per_release: dict[Release, list[Finding]]
    in_digest: str
    wall_s: float
    exit_code: int | None
    log_tail: list[str]
    failing: bool = False
    argv: list[str] = field(default_factory=list)


def targets(infos: list[ImageInfo], settings: Settings) -> list[Target]:
    """The searches asked for: per image and object type, candidates (the image's mining+infer, infer or mining
    run on one model) when ``--ymir-fuzz`` > 0 and training when ``--ymir-fuzz-training`` > 0, at the input family
    of the newest judged release, on the format the session trains first."""
    if settings.fuzz <= 0 and settings.fuzz_training <= 0:
        return []
    specs = plan(infos, settings.with_(tasks=("training",)))
    out: list[Target] = []
    for info in infos:
        multi_type = len(info.object_types) > 1
        for ot in info.object_types:
            training = next((s for s in specs if s.image == info.image and s.object_type is ot
                             and settings.target_release in (s.judged_on or (s.release,))), None)
            if training is None:
                continue
            parts = ([info.image] if len(infos) > 1 else []) + ([ot.short] if multi_type else [])
            test_id = "/".join(parts) or "image"
            has = {t: info.template(ot, t) is not None for t in Task}
            kind = ("mining+infer" if has[Task.MINING] and has[Task.INFER] else "infer" if has[Task.INFER]
                    else "mining" if has[Task.MINING] else "")
            if settings.fuzz > 0 and kind and has[Task.TRAINING]:
                out.append(Target(info.image, CANDIDATES, dataclasses.replace(training, kind=kind), settings.fuzz,
                                  test_id))
            if settings.fuzz_training > 0 and has[Task.TRAINING]:
                out.append(Target(info.image, TRAINING, training, settings.fuzz_training, test_id))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+@-]", "_", name).lstrip(".") or "_"


def crash_line(lines: list[str]) -> str:
    """The decisive exception of a log tail ('ValueError: axes don't match array'), else its last line."""
    for line in reversed(lines):
        m = EXCEPTION_RE.search(line)
        if m:
            return printable(m.group(0).strip(), 200)
    return printable(lines[-1].strip(), 200) if lines else "(no log)"


class Search:
    """One hypothesis search over one :class:`Target`; :meth:`run` in a thread, :meth:`result` as JSON."""

    def __init__(self, driver: FuzzDriver, target: Target) -> None:
        self.driver = driver
        self.target = target
        self.conductor = driver.conductor
        self.settings = driver.settings
        self.work = self.conductor.workdir / "fuzz" / _safe(target.image) / f"{target.search}-{target.spec.object_type.short}"
        self.cache: dict[str, Example] = {}
        self.tried: list[Example] = []
        self.generated = 0
        self.trivial = 0  # examples passed without a run: the budget was spent or the session stopping
        self.rules: frozenset[str] | None = None  # the rules of the first failure
        self.first: Example | None = None
        self.best: Example | None = None
        self.skipped = ""
        self.error = ""
        self.model_root: Path | None = None
        self.stage = ""
        self.class_names: tuple[str, ...] = ()
        self.reproducer: dict[str, Any] = {}
        self.started = 0.0
        self.finished = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    # -- the recipe of one example: everything render.build_workspace needs -----------------------------------
    def recipe(self, case: FuzzCase, model: str | None = None) -> dict[str, Any]:
        spec, s = self.target.spec, self.settings
        info = self.conductor.info(spec.image)
        templates = {t.value: edit_template(info.template(spec.object_type, t) or {}, t, s.hyper_params)
                     for t in Task}
        recipe: dict[str, Any] = {
            "version": render.RECIPE_VERSION, "image": spec.image, "kind": spec.kind,
            "tasks": sorted(t.value for t in spec.shape.tasks), "object_type": int(spec.object_type),
            "release": str(spec.release), "export_format": spec.export_format_value, "templates": templates,
            "gpu_ids": list(s.gpu_ids), "label": f"fuzz-{self.target.search}", "seed": s.seed, "case": case.to_json(),
        }
        if self.target.search == CANDIDATES:
            recipe.update(stage=self.stage, model=model or str(self.model_root))
        return recipe

    # -- running -----------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.started = time.monotonic()
        try:
            self._run()
        except Exception as exc:  # a defect of ymir-conformance: the test says so
            self.error = f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            self.finished = time.monotonic()
            if not self.settings.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            self.done.set()

    def _run(self) -> None:
        t, s = self.target, self.settings
        if t.search == CANDIDATES:
            base = self.conductor.get(t.spec.training_spec())
            if base.model is None:
                self.skipped = (f"no trained model to fuzz {t.spec.kind} with: "
                                f"{base.skipped or base.error or 'the training run produced no usable model package'}")
                return
            self.model_root, self.stage = base.model.root, base.model.best_stage
            self.class_names = tuple(base.model.class_names)
            strategy = candidate_cases(self.class_names)
        else:
            strategy = training_cases()
        info = self.conductor.info(t.image)
        key = f"ymir-fuzz:{info.image_id}:{t.spec.object_type.short}:{t.search}:{t.spec.release}".encode()
        hs = hsettings(max_examples=t.examples, deadline=None, database=DirectoryBasedExampleDatabase(
            str(self.driver.db_dir)), phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
            report_multiple_bugs=False)
        found: list[FuzzCase] = []

        @hs
        @given(strategy)
        def search(case: FuzzCase) -> None:
            if self.condition(case):
                found[:] = [case]
                raise FuzzFailure  # the one exception, from one place: hypothesis sees one bug

        # hypothesis's own seed attribute (what @seed sets) without @seed's database=None: the seed drives the
        # generation, and the database still replays the last session's failure first (as find() keys it)
        search._hypothesis_internal_use_seed = Random(f"{s.seed}:{t.search}").getrandbits(64)  # type: ignore[attr-defined]
        search._hypothesis_internal_database_key = key  # type: ignore[attr-defined]
        try:
            search()
        except FuzzFailure:
            pass
        if not found:
            return
        self.best = self.cache.get(found[0].key())
        if self.best is not None and self.driver.out_root is not None:
            self.keep_reproducer(self.best)

    def condition(self, case: FuzzCase) -> bool:
        """True when this input fails (with one of the first failure's rules): hypothesis's predicate."""
        key = case.key()
        with self._lock:
            self.generated += 1
            hit = self.cache.get(key)
        if hit is not None:
            return hit.failing
        if self.error or self.driver.spent() or self.conductor._closing:
            self.trivial += 1
            return False  # passes trivially: the search and its shrinking end at once
        ex = self.run_example(case)
        if ex is None:
            return False
        if self.rules is None and ex.rules:
            self.rules, self.first = ex.rules, ex
        ex.failing = bool(self.rules and ex.rules & self.rules)
        with self._lock:
            self.cache[key] = ex
            self.tried.append(ex)
        return ex.failing

    def run_example(self, case: FuzzCase) -> Example | None:
        t = self.target
        n = len(self.tried) + 1
        root = self.work / f"ex-{n:04d}"
        recipe = self.recipe(case)
        digest: list[str] = []

        def build() -> Workspace:
            ws = render.build_workspace(root, recipe)
            digest.append(render.in_digest(ws.in_dir))
            return ws

        record = self.conductor.run_custom(t.spec, build)
        try:
            if record.outcome is None:
                if record.error:
                    self.error = f"could not run a fuzz input: {record.error}"
                return None
            return self.judge(n, case, record, digest[0] if digest else "")
        finally:
            if not self.settings.keep:
                shutil.rmtree(root, ignore_errors=True)

    def judge(self, n: int, case: FuzzCase, record: RunRecord, digest: str) -> Example:
        from ..judging import _clean_failure

        o = record.outcome
        assert o is not None
        spec, s = self.target.spec, self.settings
        releases = [r for r in (spec.judged_on or (spec.release,)) if r in s.gated] or [spec.release]
        per_release = {r: judge(o, r) for r in releases}
        levels = (Level.MUST, Level.SHOULD) if s.strict else (Level.MUST,)
        failed = [f for fs in per_release.values() for f in fs if f.status is Status.FAILED and f.level in levels]
        rules = {f.check.rule for f in failed}
        refused = spec.shape.run_training and not o.succeeded and not o.timed_out and _clean_failure(o) is None
        if refused:
            rules.discard("V1")  # a training set the image refuses cleanly, with its reason: not a bug
        tail = guard.tail_lines(o.out_dir, "ymir-executor-out.log", 40)
        if "V1" in rules:
            how = "times out" if o.timed_out else f"exits {o.exit_code}"
            headline = f"{spec.kind} {how} with `{crash_line(tail)}`"
        elif rules:
            v = next(v for f in failed if f.check.rule in rules for v in f.violations)
            headline = f"[{v.rule} {v.level or 'MUST'}] {v.message}"[:400]
        else:
            headline = "passes"
        shown = [v for f in failed if f.check.rule in rules for v in f.violations]
        return Example(n, case, frozenset(rules), headline, render_all(shown)[:40], per_release, digest,
                       record.wall_s or o.duration_s, o.exit_code, tail[-15:], argv=list(o.argv))

    # -- the reproducer ------------------------------------------------------------------------------------------
    def keep_reproducer(self, ex: Example) -> None:
        """``fuzz/<image>/<search>/`` under the report dir: the failing /in rebuilt (``in/``), ``case.json`` (its
        recipe), the model package (``model/``, candidates), and a README with the rebuild and docker commands."""
        assert self.driver.out_root is not None
        t = self.target
        same = [o for o in self.driver.targets_of(t.image) if o.search == t.search]
        out = self.driver.out_root / _safe(t.image) / (t.search if len(same) <= 1
                                                      else f"{t.search}-{t.spec.object_type.short}")
        ws = render.build_workspace(out, self.recipe(ex.case))  # wipes ``out`` first
        recipe = self.recipe(ex.case, model="model" if t.search == CANDIDATES else None)
        if t.search == CANDIDATES and self.model_root is not None:
            shutil.copytree(self.model_root, out / "model")
        case_file = out / "case.json"
        case_file.write_text(json.dumps(recipe, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        from ..onramp import docker_command
        import shlex

        rebuild = (f"python -m ymir_conformance workspace {shlex.quote(str(out.parent / (out.name + '-rebuilt')))} "
                   f"--fuzz-case {shlex.quote(str(case_file))}")
        docker = " ".join(shlex.quote(a) for a in docker_command(ws, t.image))
        kept_digest = render.in_digest(ws.in_dir)
        (out / "README.txt").write_text(
            f"The minimal failing input of the {t.search} search of {t.image}:\n  {ex.case.describe()}\n"
            f"  {ex.headline}\n\nRebuild /in byte for byte:\n  {rebuild}\nRun the image on it:\n  {docker}\n",
            encoding="utf-8")
        self.reproducer = {"dir": str(out), "in_dir": str(ws.in_dir), "case_file": str(case_file),
                           "rebuild": rebuild, "docker": docker, "in_digest": ex.in_digest,
                           "kept_in_digest": kept_digest}

    # -- the outcome ---------------------------------------------------------------------------------------------
    def result(self) -> dict[str, Any]:
        t, s = self.target, self.settings
        walls = [e.wall_s for e in self.tried]
        out: dict[str, Any] = {
            "image": t.image, "search": t.search, "object_type": int(t.spec.object_type), "run_kind": t.spec.kind,
            "test_id": t.test_id, "release": str(t.spec.release), "examples": t.examples, "tried": len(self.tried),
            "generated": self.generated, "passed_trivially": self.trivial, "budget_s": s.fuzz_budget_s,
            "budget_spent": self.driver.spent(), "elapsed_s": round(max(0.0, self.finished - self.started), 3),
            "time_per_input_s": round(sum(walls) / len(walls), 3) if walls else None, "seed": s.seed,
            "database": str(self.driver.db_dir), "coverage": coverage([e.case for e in self.tried]),
            "skipped": self.skipped, "error": self.error, "failure": None,
        }
        best = self.best
        if best is not None and self.first is not None:
            after = [e for e in self.tried if e.n > self.first.n]
            out["failure"] = {
                "rules": sorted(best.rules & (self.rules or best.rules)), "input": best.case.describe(),
                "headline": best.headline, "images": len(best.case.all_images), "found_at": self.first.n,
                "first_input": self.first.case.describe(), "first_headline": self.first.headline,
                "shrink_runs": len(after), "shrinks": sum(1 for e in after if e.failing),
                "violations": best.violations, "log_tail": best.log_tail, "exit_code": best.exit_code,
                "case": best.case.to_json(), "in_digest": best.in_digest, **self.reproducer,
            }
        return out

    def message(self) -> str:
        """The failure text of the search's test: the minimal input in words, the rules, how to rebuild it."""
        r = self.result()
        f = r["failure"]
        assert f is not None
        lines = [f"{f['input']}: {f['headline']}",
                 f"rules broken: {', '.join(f['rules'])}; found at input {f['found_at']} of {r['tried']} tried "
                 f"({r['examples']} asked, budget {r['budget_s']:.0f}s), shrunk in {f['shrink_runs']} run(s) "
                 f"({f['shrinks']} smaller failing inputs) from: {f['first_input']}"]
        if f.get("in_dir"):
            lines += [f"the failing /in is kept at {f['in_dir']}", f"rebuild it byte for byte: {f['rebuild']}",
                      f"run the image on it: {f['docker']}"]
        else:
            lines.append("(give --ymir-report-dir to keep the failing /in and get the rebuild command)")
        lines += ["", *f["violations"]]
        if f["log_tail"]:
            lines += ["last lines of /out/ymir-executor-out.log:", *f["log_tail"]]
        return "\n".join(lines)


class FuzzDriver:
    """The session's searches: started together (each its own thread), waited for by their tests."""

    def __init__(self, conductor: Conductor, settings: Settings) -> None:
        self.conductor = conductor
        self.settings = settings
        self.db_dir = conductor.workdir.parent / DB_DIR
        self.out_root = (settings.report_dir / REPRODUCERS_DIR) if settings.report_dir is not None else None
        self.searches: dict[tuple[str, str, int], Search] = {}
        self._threads: dict[tuple[str, str, int], threading.Thread] = {}
        self._all: list[Target] = []
        self._lock = threading.Lock()
        self.t0: float | None = None

    def spent(self) -> bool:
        return self.t0 is not None and time.monotonic() - self.t0 >= self.settings.fuzz_budget_s

    def targets_of(self, image: str) -> list[Target]:
        return [t for t in self._all if t.image == image]

    def start(self, wanted: list[Target]) -> None:
        """Start the searches of ``wanted`` that are not running yet (the budget's clock starts with the first)."""
        with self._lock:
            for t in wanted:
                if t not in self._all:
                    self._all.append(t)
                if t.key in self.searches:
                    continue
                if self.t0 is None:
                    self.t0 = time.monotonic()
                    self.db_dir.mkdir(parents=True, exist_ok=True)
                search = self.searches[t.key] = Search(self, t)
                thread = threading.Thread(target=search.run, name=f"ymir-fuzz-{t.search}", daemon=True)
                self._threads[t.key] = thread
                thread.start()

    def wait(self, target: Target) -> Search:
        self.start([target])
        search = self.searches[target.key]
        while not search.done.wait(0.2):  # short waits: a SIGINT reaches the main thread
            continue
        return search

    def results(self) -> list[dict[str, Any]]:
        return [s.result() for s in self.searches.values() if s.done.is_set()]


def describe_settings(settings: Settings) -> str:
    """The header line of a fuzzing session."""
    return (f"ymir-conformance: fuzz candidates {settings.fuzz}, training {settings.fuzz_training} input(s) per "
            f"image, budget {settings.fuzz_budget_s:.0f}s, seed {settings.seed}, database "
            f"{(settings.workdir or Path('.ymir-work')) / DB_DIR}")


__all__ = ["FuzzDriver", "Search", "Target", "crash_line", "describe_settings", "targets"]
