"""The session plugin: the session's state and lifecycle hooks; the work is delegated. The pytest11 entry point
(entry.py) imports it and calls :func:`start_session` from pytest_configure only when there are images to certify
(``--image`` or the ``ymir_images`` ini value): without them a pytest run, ``pytest --help`` included, never
imports this module.

The rooms (the model: pytest-xdist's plugin.py / dsession.py / workermanage.py): collection.py (parametrization,
marks, the plan), distributed.py (xdist controller and worker coordination), report/junit.py (JUnit hooks),
report/hooks.py (header, terminal summary, reports at sessionfinish), judging.py (what the suite's tests call),
interrupt.py (SIGTERM); the runs themselves: the conductor (conductor.py).
"""
from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path

import pytest

from .collection import Collection
from .contracts.base import Area
from .distributed import XdistCoordinator
from .entry import SESSION_KEY
from .errors import ConformanceError, SettingsError
from .failure_text import Shown
from .fuzz.hooks import FuzzHooks
from .interrupt import Interrupt
from .judging import Judge, conclude
from .report.hooks import SessionReport
from .report.junit import JUnitHooks
# an install made before entry.py (an editable one keeps its pytest11 entry point until reinstalled) still loads
# this module as the entry point: it then gets the entry point's hooks and fixture from here
from .entry import pytest_addoption, pytest_configure, ymir  # noqa: F401
from .options import SETTINGS_KEY, Settings
from .conductor import Conductor
from .session import RunRecord, RunSpec, plan
from .verdict import Ledger

SUITE_DIR = Path(__file__).parent / "suite"


def start_session(config: pytest.Config, settings: Settings) -> None:
    """From the entry point's pytest_configure (entry.py), when there are images to certify."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args = [str(SUITE_DIR)]
    session = YmirSession(config, settings)
    try:  # fail fast, before collection, on a missing engine or image, or a transfer that cannot work
        from .engines import check_gpu_split
        from .runner import ensure_image

        workers = config.getoption("numprocesses", None) if getattr(config, "workerinput", None) is None else None
        if isinstance(workers, int) and workers > 0:
            problem = check_gpu_split(len(settings.gpu_ids), workers, len(settings.engines) or 1)
            if problem:
                raise SettingsError(f"--ymir-gpus with -n {workers}: {problem}")
        for engine in session.conductor.pool.engines:
            for image in settings.images:
                ensure_image(engine.cl, image)
        session.inspect_ahead()  # overlaps the transfer probes below and pytest's own collection work
        for engine in session.conductor.pool.engines if not config.getoption("collectonly", False) else ():
            session.conductor.transfer_for(engine, settings.images[0])  # --collect-only runs nothing: no probe
    except ConformanceError as exc:
        session.join_inspection()
        session.release()
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "ymir-conformance-session")
    config.pluginmanager.register(session.collection, "ymir-conformance-collection")
    config.pluginmanager.register(session.xdist, "ymir-conformance-xdist")
    config.pluginmanager.register(session.junit, "ymir-conformance-junit")
    config.pluginmanager.register(session.reports, "ymir-conformance-reports")
    config.pluginmanager.register(session.fuzz, "ymir-conformance-fuzz")
    session.interrupt.install_sigterm()
    from .report.live import LiveStatus  # the live status of running containers (xdist: workers -> controller)

    config.pluginmanager.register(LiveStatus(config, settings.status_interval_s), "ymir-conformance-live")


class YmirSession:
    """Session state, registered only when images are given."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        # an xdist worker takes the session id its controller chose for it (pytest_configure_node), so the
        # controller can reap what the worker left should it crash
        self.session_id = str(getattr(config, "workerinput", {}).get("ymir_session") or uuid.uuid4().hex[:12])
        self.ledger = Ledger(releases=settings.releases)
        self.notes: list[str] = []  # other lines for the end of the terminal summary (e.g. the JUnit family)
        self.shown = Shown()  # what failures printed already (fixes, first violations, runs' docker line + log)
        self._conductor: Conductor | None = None
        self.specs: list[RunSpec] | None = None
        from .runner import claim_session

        self.owner = claim_session(self.session_id, keep=settings.keep)
        self.reaped = ""  # the line saying what reap_stale removed at start, if anything
        self.interrupt = Interrupt()  # SIGTERM cleans up like Ctrl-C (interrupt.py)
        self.cleanup_problems: list[str] = []  # workspaces not removed completely (rmtree.remove_tree says why)
        # the rooms the work is delegated to; start_session registers those with hooks beside this one
        self.judge = Judge(self)  # judging dispatch (judging.py)
        self.collection = Collection(self)  # parametrization, marks, the plan (collection.py)
        self.xdist = XdistCoordinator(self)  # pytest-xdist: controller and worker coordination (distributed.py)
        self.junit = JUnitHooks(self)  # JUnit XML: xunit2, <system-out>, properties (report/junit.py)
        self.reports = SessionReport(self)  # header, terminal summary, reports (report/hooks.py)
        self.fuzz = FuzzHooks(self)  # --ymir-fuzz: the input-space searches (fuzz/hooks.py)

    @property
    def conductor(self) -> Conductor:
        if self._conductor is None:
            from .runner import client, reap_stale

            root = self.settings.workdir or Path(".ymir-work")
            workdir = root / self.session_id
            cl = client(base_url=self.settings.engines[0] if self.settings.engines else None)
            # before any run: remove what sessions that are gone (SIGKILL, OOM, reboot) left on this engine
            reaped = reap_stale(cl, root, spare=(self.session_id,))
            if reaped:
                self.reaped = reaped.line()
            self._conductor = Conductor(cl, self.settings, workdir, self.session_id)
            self.owner.write(workdir)  # lets a later session reap this workspace if we are killed
        return self._conductor

    def release(self) -> str | None:
        """Remove this session's containers and workspace (idempotent; the last resort at unconfigure). Returns
        what could not be removed (a note for the terminal and report.json), never raises for it."""
        from .runner import reap

        problem: str | None = None
        if self._conductor is not None:
            # first: no queued run may start a container after the reap below (--ymir-keep: running ones are
            # stopped, not removed)
            self._conductor.close(stop_running=self.settings.keep)
        if self._conductor is not None and not self.settings.keep:
            for cl in self._conductor.pool.clients():  # every engine this session ran on (--ymir-engines)
                try:
                    reap(cl, self.session_id)
                except Exception:  # the engine went away: the next session reaps by owner
                    pass
            problem = self._conductor.cleanup()
            if problem is not None:
                self.cleanup_problems.append(problem)
        return problem

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.junit.force_xunit2()
        if self.reaped and getattr(self.config, "workerinput", None) is None:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(self.reaped)
            else:
                sys.stderr.write(self.reaped + "\n")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.interrupt.finishing = True
        self.join_inspection()
        try:
            self.release()
        finally:
            self.interrupt.restore_sigterm()

    def inspect_ahead(self) -> None:
        """Inspect the images in the background from pytest_configure on; the parametrization (all_specs) awaits
        the result (Conductor.inspect_all holds its lock while inspecting and keeps what it found). Not on an
        xdist controller, which collects nothing. An error is not kept: all_specs inspects again and reports it."""
        if self.config.getoption("numprocesses", None) and getattr(self.config, "workerinput", None) is None:
            return

        def inspect() -> None:
            try:
                self.conductor.inspect_all(self.settings.images)
            except Exception:
                pass

        self._inspecting = threading.Thread(target=inspect, name="ymir-inspect-ahead", daemon=True)
        self._inspecting.start()

    def join_inspection(self) -> None:
        ahead = getattr(self, "_inspecting", None)
        if ahead is not None:
            ahead.join()

    def all_specs(self) -> list[RunSpec]:
        if self.specs is None:
            try:
                infos = self.conductor.inspect_all(self.settings.images)  # every image at once
            except ConformanceError as exc:
                raise pytest.UsageError(str(exc)) from None
            for info in infos:
                self.ledger.images[info.image] = info
            self.specs = plan(infos, self.settings)
        return self.specs

    # -- used by the suite ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunRecord:
        self.fuzz.start()
        return self.conductor.get(spec)

    def judge_area(self, spec: RunSpec, record: RunRecord, areas: tuple[Area, ...], subject_area: str,
                   node: pytest.Item) -> None:
        self.judge.judge_area(spec, record, areas, subject_area, node)

    def judge_negative(self, spec: RunSpec, record: RunRecord, node: pytest.Item) -> None:
        self.judge.judge_negative(spec, record, node)

    def judge_image(self, image: str, node: pytest.Item) -> None:
        self.judge.judge_image(image, node)

    def judge_fuzz(self, target: object, node: pytest.Item) -> None:
        self.fuzz.judge(target, node)


__all__ = ["YmirSession", "SETTINGS_KEY", "SESSION_KEY", "conclude", "start_session", "pytest_addoption",
           "pytest_configure", "ymir"]
