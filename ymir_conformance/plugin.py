"""The pytest11 entry point: hooks only; the work is delegated.

Without ``--image`` (or the ``ymir_images`` ini value) the plugin adds its options and markers and nothing
else: a normal pytest run is unchanged.
"""
from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .contracts.base import Area, Check, Finding, Level, Status, Violation, judge, render_all
from .platform import ReleaseRange
from .errors import ConformanceError, SettingsError, ShouldViolationWarning
from .options import Settings, add_options, resolve
from .platform import Release
from .session import KIND_SHAPES, NEGATIVE_INPUTS, Conductor, RunRecord, RunSpec, plan
from .verdict import Ledger, merge_reports, must_and_should

SETTINGS_KEY = pytest.StashKey[Settings]()
SESSION_KEY = pytest.StashKey["YmirSession"]()
SUITE_DIR = Path(__file__).parent / "suite"

# which task kinds each suite test is parametrized over (None: every kind that is not a negative input)
NEGATIVE_KINDS = tuple(k for k in KIND_SHAPES if k.startswith("negative-"))
TEST_KINDS: dict[str, tuple[str, ...] | None] = {
    "test_lifecycle": None,
    "test_monitor": None,
    "test_negative_input": NEGATIVE_KINDS,
    "test_training_result": ("training", "retraining"),
    "test_infer_result": ("infer", "infer-nonbest", "single-image-infer", "mining+infer"),
    "test_mining_result": ("mining", "mining+infer"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a Docker engine with an NVIDIA GPU runtime (skipped elsewhere)")
    config.addinivalue_line("markers", "ymir_area(name): the contract area a conformance test judges")
    try:
        settings = resolve(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    if not settings.images:
        return
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args = [str(SUITE_DIR)]
    session = YmirSession(config, settings)
    try:  # fail fast, before collection, on a missing engine or image
        from .runner import ensure_image

        for image in settings.images:
            ensure_image(session.conductor.cl, image)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "ymir-conformance-session")


class YmirSession:
    """Session state, registered only when images are given."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session_id = uuid.uuid4().hex[:12]
        self.ledger = Ledger(releases=settings.releases)
        self.worker_reports: list[dict[str, Any]] = []  # pytest-xdist controller: one per worker
        self._conductor: Conductor | None = None
        self.specs: list[RunSpec] | None = None

    @property
    def conductor(self) -> Conductor:
        if self._conductor is None:
            from .runner import client

            workdir = (self.settings.workdir or Path(".ymir-work")) / self.session_id
            self._conductor = Conductor(client(), self.settings, workdir, self.session_id)
        return self._conductor

    def all_specs(self) -> list[RunSpec]:
        if self.specs is None:
            try:
                infos = [self.conductor.info(img) for img in self.settings.images]
            except ConformanceError as exc:
                raise pytest.UsageError(str(exc)) from None
            for info in infos:
                self.ledger.images[info.image] = info
            self.specs = plan(infos, self.settings)
        return self.specs

    # -- hooks ----------------------------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        lines = [f"ymir-conformance: profile {s.profile}, seed {s.seed}, platform "
                 f"{', '.join(str(r) for r in s.releases)}, user {s.user}, "
                 f"{'GPUs ' + ','.join(s.gpu_ids) if s.gpu_ids else 'CPU mode'}, "
                 f"network {'allowed' if s.allow_network else 'none'}"]
        try:
            self.all_specs()
        except pytest.UsageError as exc:
            return lines + [f"ymir-conformance: {exc}"]
        for info in self.ledger.images.values():
            types = ", ".join(f"{t.name.lower()} ({int(t)}): {'/'.join(k.value for k in info.declared_tasks(t)) or 'no tasks'}"
                              for t in info.object_types)
            lines.append(f"image {info.image} id {info.short_id}: {types}")
        return lines

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        name = metafunc.function.__name__
        if "ymir_image" in metafunc.fixturenames:
            images = list(self.settings.images)
            metafunc.parametrize("ymir_image", images, ids=[i.rsplit("/", 1)[-1] for i in images] if len(images) > 1
                                 else ["image"])
        if "ymir_spec" in metafunc.fixturenames:
            specs = self.all_specs()
            if name in TEST_KINDS:
                kinds = TEST_KINDS[name]
                specs = [s for s in specs if (s.kind in kinds if kinds is not None else s.kind not in NEGATIVE_KINDS)]
            if not specs:
                metafunc.parametrize("ymir_spec", [pytest.param(None, marks=pytest.mark.skip(
                    reason="no task run of this kind was planned for the image(s) (templates, --ymir-tasks)"))],
                    ids=["none"])
                return
            ids = [f"training-{s.id}" if s.kind == "training" and name in ("test_lifecycle", "test_monitor")
                   else s.id for s in specs]
            metafunc.parametrize("ymir_spec", specs, ids=ids)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # outer guard: pytest-timeout; a test may trigger training + retries before its own run
        guard = int(self.settings.budget.total_s * 1.5 * 3 * 3 + 120)
        xdist = self.config.pluginmanager.hasplugin("xdist")
        for item in items:
            spec = getattr(item, "callspec", None) and item.callspec.params.get("ymir_spec")  # type: ignore[attr-defined]
            if not isinstance(spec, RunSpec):
                continue
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(guard))
            if xdist:  # with --dist loadgroup, all tests that need one training land on one worker: run once
                item.add_marker(pytest.mark.xdist_group(f"ymir:{spec.image}:{spec.training_spec().id}"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: collect each worker's report data."""
        part = getattr(node, "workeroutput", {}).get("ymir_report")
        if part:
            self.worker_reports.append(json.loads(part))

    def report(self) -> dict[str, Any] | None:
        """Report data of this process, merged with what xdist workers sent; None when nothing ran."""
        from .report import report_data

        self._sync_ledger()
        parts = list(self.worker_reports)
        if self.ledger.judgements or self.ledger.records:
            parts.append(report_data(self.ledger, self.settings))
        return merge_reports(parts) if parts else None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .report.terminal import render_summary

        data = self.report()
        if data is None:
            return
        terminalreporter.write_sep("=", "ymir-conformance verdict")
        for line in render_summary(data):
            terminalreporter.write_line(line)
        if self.settings.keep and self._conductor is not None:
            terminalreporter.write_line(f"ymir-conformance: workspaces kept under {self._conductor.workdir}; "
                                        "containers kept (label org.ymir-conformance.session="
                                        f"{self.session_id})")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report import report_data, write_reports
        from .runner import reap

        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller renders and writes the reports
            self._sync_ledger()
            workeroutput["ymir_report"] = json.dumps(report_data(self.ledger, self.settings), default=str)
        elif self.settings.report_dir is not None:
            data = self.report()
            if data is not None:
                write_reports(data, self.settings.report_dir)
        if self._conductor is not None and not self.settings.keep:
            reap(self._conductor.cl, self.session_id)
            self._conductor.cleanup()

    def _sync_ledger(self) -> None:
        if self._conductor is not None:
            self.ledger.container_runs = self._conductor.container_runs
            for rec in self._conductor.records.values():
                self.ledger.records[rec.spec.id] = rec

    # -- used by the suite ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunRecord:
        return self.conductor.get(spec)

    def skip(self, reason: str) -> NoReturn:
        """Skip, except in the certify profile, which may skip nothing the image declares."""
        if self.settings.profile == "certify" and "declares no" not in reason:
            pytest.fail(f"certify profile: nothing the image declares may be skipped, but: {reason}", pytrace=False)
        pytest.skip(reason)

    def judge_area(self, spec: RunSpec, record: RunRecord, areas: tuple[Area, ...], subject_area: str,
                   properties: list[tuple[str, object]]) -> None:
        if record.outcome is None:
            self.skip(record.skipped)
        members = spec.judged_on or (spec.release,)
        per_release = {r: judge(record.outcome, r, areas) for r in members}
        self.ledger.add(spec.image, spec.id, subject_area, per_release)
        target = max(members)
        conclude(per_release[target], target, self.settings, properties,
                 context=f"{spec.kind} run {spec.id} ({record.outcome.argv and ' '.join(record.outcome.argv)})",
                 log=_tail(record))

    def judge_negative(self, spec: RunSpec, record: RunRecord, properties: list[tuple[str, object]]) -> None:
        """The image must cope (exit 0 with valid outputs) or fail cleanly: non-zero exit, monitor state 4 with
        a 3000xx code, the reason in the last log lines. Never hang, never exit 0 with garbage."""
        if record.outcome is None:
            self.skip(record.skipped)
        o = record.outcome
        rule, what, _ = NEGATIVE_INPUTS[spec.kind.removeprefix("negative-")]
        target = max(spec.judged_on or (spec.release,))
        context = f"negative input '{what}' ({spec.id})"
        if o.succeeded:  # coped: its outputs must still hold
            findings = judge(o, target, (Area.TRAINING, Area.MONITOR))
        else:
            findings = [f for f in judge(o, target, (Area.LIFECYCLE, Area.MONITOR)) if f.check.rule != "V1"]
            clean = _clean_failure(o)
            chk = Check(rule=rule, title="copes with odd input or fails cleanly", area=Area.LIFECYCLE,
                        levels=((ReleaseRange.parse("all"), Level.SHOULD),), func=lambda view: ())
            violations = [] if clean is None else [Violation(
                rule, f"the image neither coped with the input ({what}) nor failed cleanly: {clean}",
                file="/out/monitor.txt", level=Level.SHOULD,
                fix="validate inputs up front; on unusable input write monitor state 4 with the matching 3000xx "
                    "code (300001 config, 300002 dataset, 300003 image) and print the reason last, then exit 1")]
            findings.append(Finding(chk, Status.FAILED if violations else Status.PASSED, Level.SHOULD, violations))
        self.ledger.add(spec.image, spec.id, "negative", {target: findings})
        conclude(findings, target, self.settings, properties, context=context, log=_tail(record))

    def judge_image(self, image: str, properties: list[tuple[str, object]]) -> None:
        info = self.conductor.info(image)
        per_release = {r: info.findings(r) for r in self.settings.releases}
        self.ledger.add(image, "image", "image", per_release)
        target = self.settings.target_release
        conclude(per_release[target], target, self.settings, properties, context=f"image {image}", log="")


def _clean_failure(o: Any) -> str | None:
    """None when a failed run failed cleanly (state 4 + 3000xx code), else what was missing."""
    from .progress import parse_record

    if o.timed_out:
        return "it hung until the time limit"
    try:
        raw = (o.out_dir / "monitor.txt").read_text(errors="replace")
    except OSError:
        return "no /out/monitor.txt"
    rec = parse_record(raw)
    fields = raw.split("\n", 1)[0].split("\t")
    if rec is None or rec[2] != 4:
        return f"exit {o.exit_code} but monitor.txt line 1 is {raw.splitlines()[0] if raw else '(empty)'!r}, not state 4"
    if len(fields) < 5 or not fields[4].strip().startswith("3000"):
        return f"state 4 without a 3000xx code in column 5 (found {fields[4] if len(fields) > 4 else 'nothing'!r})"
    return None


def _tail(record: RunRecord, n: int = 15) -> str:
    if record.outcome is None:
        return ""
    try:
        lines = record.outcome.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def conclude(findings: list[Finding], release: Release, settings: Settings, properties: list[tuple[str, object]], context: str,
             log: str) -> None:
    """Turn findings into the test's outcome: fail on MUST (and SHOULD with --ymir-strict), warn on SHOULD."""
    must, should = must_and_should(findings)
    for f in findings:
        if f.status is not Status.NOT_APPLICABLE:
            # user_properties end up as JUnit <property> elements (any junit_family, without record_property's
            # xunit2 warning), one per rule judged
            properties.append((f.check.rule, f"{f.status}" + (f" ({f.level})" if f.level else "")))
    blocking = must + (should if settings.strict else [])
    if blocking:
        text = [f"{len(blocking)} rule(s) broken on platform {release} by {context}:", ""]
        for f in blocking:
            text += render_all(f.violations)
        if should and not settings.strict:
            text += ["", "also (SHOULD, not failing):"] + [line for f in should for line in render_all(f.violations)]
        if log:
            text += ["", "last lines of /out/ymir-executor-out.log:", log]
        pytest.fail("\n".join(text), pytrace=False)
    if should:
        warnings.warn(ShouldViolationWarning(
            f"SHOULD-level rule(s) broken on platform {release} by {context}:\n"
            + "\n".join(line for f in should for line in render_all(f.violations))), stacklevel=2)
    not_eval = [f for f in findings if f.status is Status.NOT_EVALUATED]
    if not_eval and not any(f.status is Status.PASSED and f.level is Level.MUST for f in findings):
        pytest.skip(f"not evaluated: {not_eval[0].reason} (see test_lifecycle for why)")


@pytest.fixture
def ymir(request: pytest.FixtureRequest) -> YmirSession:
    """The ymir-conformance session: run specs, judge areas (only with --image)."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("ymir-conformance needs --image=REPO:TAG")
    return session


__all__ = ["ymir", "YmirSession", "SETTINGS_KEY", "SESSION_KEY", "conclude"]
