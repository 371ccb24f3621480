"""The session plugin: hooks only; the work is delegated. The pytest11 entry point (entry.py) imports and
registers it from pytest_configure only when there are images to certify (``--image`` or the ``ymir_images``
ini value): without them a pytest run, ``pytest --help`` included, never imports this module.
"""
from __future__ import annotations

import json
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from .collection import Collection
from .interrupt import Interrupt
from .judging import Judge, conclude
from .report.junit import JUnitHooks
from .distributed import XdistCoordinator, repeated_runs_lines
from .contracts.base import Area
from .printable import printable, printable_lines
from .failure_text import Shown
from . import hyper
from .errors import ConformanceError, SettingsError
from .entry import SESSION_KEY
# an install made before entry.py (an editable one keeps its pytest11 entry point until reinstalled) still loads
# this module as the entry point: it then gets the entry point's hooks and fixture from here
from .entry import pytest_addoption, pytest_configure, ymir  # noqa: F401
from .options import SETTINGS_KEY, Settings
from .session import Conductor, RunRecord, RunSpec, format_notes, plan
from .verdict import Ledger, merge_reports

SUITE_DIR = Path(__file__).parent / "suite"
CLEANUP_NOTE = "ymir-conformance: cleanup incomplete (the verdict and the exit status stand; a later session reaps the rest): "

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
        self.final: dict[str, Any] | None = None  # the report data as written at sessionfinish (with exit status)
        self.judge = Judge(self)  # judging dispatch (judging.py)
        self.junit = JUnitHooks(self)  # JUnit XML: xunit2, <system-out>, properties (report/junit.py)
        self.collection = Collection(self)  # parametrization, marks, the plan (collection.py)
        self.xdist = XdistCoordinator(self)  # pytest-xdist: controller and worker coordination (distributed.py)
        self._conductor: Conductor | None = None
        self.specs: list[RunSpec] | None = None
        from .runner import claim_session

        self.owner = claim_session(self.session_id, keep=settings.keep)
        self.reaped = ""  # the line saying what reap_stale removed at start, if anything
        self.interrupt = Interrupt()  # SIGTERM cleans up like Ctrl-C (interrupt.py)
        self.cleanup_problems: list[str] = []  # workspaces not removed completely (rmtree.remove_tree says why)

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

    # -- hooks ----------------------------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        lines = [f"ymir-conformance: profile {s.profile}, seed {s.seed}, platform "
                 f"{', '.join(str(r) for r in s.releases)}, user {s.user}, "
                 f"{'GPUs ' + ','.join(s.gpu_ids) if s.gpu_ids else 'CPU mode'}, "
                 f"network {'allowed' if s.allow_network else 'none'}, diagnose {s.diagnose}"]
        if s.hyper_params or s.dataset_size:
            lines.append("ymir-conformance: " + "; ".join(
                ([f"hyper-parameters set: {hyper.describe(s.hyper_params)}"] if s.hyper_params else [])
                + ([f"dataset size: {s.dataset_size}"] if s.dataset_size else [])))
        if self._conductor is not None and (s.engines or s.transfer != "auto" or any(
                e.transfer == "archive" for e in self._conductor.pool.engines)):
            lines.append("ymir-conformance: engines " + ", ".join(
                f"{e.url} ({e.transfer or s.transfer}{': ' + e.why_archive if e.transfer == 'archive' else ''})"
                for e in self._conductor.pool.engines))
        try:
            self.all_specs()
        except pytest.UsageError as exc:
            return lines + [f"ymir-conformance: {exc}"]
        for info in self.ledger.images.values():
            types = ", ".join(f"{t.name.lower()} ({int(t)}): {'/'.join(k.value for k in info.declared_tasks(t)) or 'no tasks'}"
                              for t in info.object_types)
            lines.append(f"image {info.image} id {info.short_id}: {types}")
            lines += [f"  note: {n}" for n in format_notes(info, s.releases, s)]
        return [printable(line, limit=0) for line in lines]  # notes quote the image's templates

    def report(self) -> dict[str, Any] | None:
        """Report data of this process, merged with what xdist workers sent; None when nothing ran."""
        from .report import finish, report_data

        self._sync_ledger()
        parts = list(self.xdist.worker_reports)
        if self.ledger.judgements or self.ledger.records:
            parts.append(report_data(self.ledger, self.settings))
        if not parts:
            return None
        merged = merge_reports(parts)
        cleanup = list(dict.fromkeys(p for part in parts for p in part.get("cleanup", [])))
        if cleanup:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "cleanup": cleanup}
        if self.xdist.lost_container_runs:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "container_runs": merged.get("container_runs", 0) + self.xdist.lost_container_runs}
        merged = {**merged, "command": ["pytest", *map(str, self.config.invocation_params.args)]}  # to reproduce
        return finish(merged)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .report.terminal import render_summary

        data = self.final or self.report()
        if data is None:
            for line in dict.fromkeys(self.xdist.xdist_notes + self.notes):  # e.g. every worker crashed
                terminalreporter.write_line(printable_lines(line))
            return
        terminalreporter.write_sep("=", "ymir-conformance verdict")
        for line in render_summary(data, quiet=self.config.get_verbosity() < 0):
            terminalreporter.write_line(line)
        loadgroup = self.config.getoption("dist", "no") == "loadgroup"
        for line in dict.fromkeys(self.xdist.xdist_notes + repeated_runs_lines(data, loadgroup) + self.notes
                                  + [CLEANUP_NOTE + p for p in data.get("cleanup", [])]):
            terminalreporter.write_line(printable_lines(line))
        if self.settings.keep and self._conductor is not None:
            terminalreporter.write_line(f"ymir-conformance: workspaces kept under {self._conductor.workdir}; "
                                        "containers kept (label org.ymir-conformance.session="
                                        f"{self.session_id})")

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the file: it carries the suite properties
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report import finish, report_data, write_logs, write_reports

        self.interrupt.finishing = True
        if self.interrupt.terminating:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        workeroutput = getattr(self.config, "workeroutput", None)
        # the report's data and the run logs are read from the workspaces: both before the cleanup, whose
        # problems (a tree it could not remove) are then added as a note, never as a verdict or an exit status
        data: dict[str, Any] | None
        if workeroutput is not None:  # an xdist worker: the controller renders and writes the reports
            self._sync_ledger()
            data = report_data(self.ledger, self.settings)
        else:
            data = self.report()
        if self.settings.report_dir is not None and self._conductor is not None:
            try:  # each process (xdist worker or not) writes the logs of its own runs
                write_logs(self._conductor.records.values(), self.settings.report_dir)
            except OSError as exc:
                self.notes.append(f"ymir-conformance: run logs not written under {self.settings.report_dir}: {exc}")
        self.release()
        problems = list(dict.fromkeys(self.cleanup_problems))
        self.notes += [CLEANUP_NOTE + p for p in problems]
        if workeroutput is not None:
            workeroutput["ymir_report"] = json.dumps({**(data or {}), "cleanup": problems}, default=str)
        elif data is not None:
            data["cleanup"] = list(dict.fromkeys([*data.get("cleanup", []), *problems]))
            self.final = finish(data, exit_status=int(session.exitstatus))
            self.junit.junit_properties(self.final, int(session.exitstatus))
            if self.settings.report_dir is not None:
                write_reports(self.final, self.settings.report_dir)

    def _sync_ledger(self) -> None:
        if self._conductor is not None:
            self.ledger.container_runs = self._conductor.container_runs
            for rec in self._conductor.records.values():
                self.ledger.records[rec.spec.id] = rec

    # -- used by the suite ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunRecord:
        return self.conductor.get(spec)

    def judge_area(self, spec: RunSpec, record: RunRecord, areas: tuple[Area, ...], subject_area: str,
                   node: pytest.Item) -> None:
        self.judge.judge_area(spec, record, areas, subject_area, node)

    def judge_negative(self, spec: RunSpec, record: RunRecord, node: pytest.Item) -> None:
        self.judge.judge_negative(spec, record, node)

    def judge_image(self, image: str, node: pytest.Item) -> None:
        self.judge.judge_image(image, node)


__all__ = ["YmirSession", "SETTINGS_KEY", "SESSION_KEY", "conclude", "start_session", "pytest_addoption",
           "pytest_configure", "ymir"]
