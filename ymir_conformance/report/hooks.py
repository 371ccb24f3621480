"""The session's report hooks: the header, the ymir-conformance verdict in the terminal summary, and at
sessionfinish the report data (merged with what xdist workers sent), the run logs, report.json, the certificate
and the JUnit suite properties (report/junit.py). Registered beside the session plugin (plugin.py).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from .. import hyper
from ..distributed import repeated_runs_lines
from ..printable import printable, printable_lines
from ..session import format_notes
from ..verdict import merge_reports

if TYPE_CHECKING:
    from ..plugin import YmirSession

CLEANUP_NOTE = "ymir-conformance: cleanup incomplete (the verdict and the exit status stand; a later session reaps the rest): "


class SessionReport:
    """The session's header, terminal summary and reports."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.config = session.config
        self.settings = session.settings
        self.final: dict[str, Any] | None = None  # the report data as written at sessionfinish (with exit status)

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
        if self.session._conductor is not None and (s.engines or s.transfer != "auto" or any(
                e.transfer == "archive" for e in self.session._conductor.pool.engines)):
            lines.append("ymir-conformance: engines " + ", ".join(
                f"{e.url} ({e.transfer or s.transfer}{': ' + e.why_archive if e.transfer == 'archive' else ''})"
                for e in self.session._conductor.pool.engines))
        fuzz = self.session.fuzz.header_line()
        if fuzz:
            lines.append(fuzz)
        try:
            self.session.all_specs()
        except pytest.UsageError as exc:
            return lines + [f"ymir-conformance: {exc}"]
        for info in self.session.ledger.images.values():
            types = ", ".join(f"{t.name.lower()} ({int(t)}): {'/'.join(k.value for k in info.declared_tasks(t)) or 'no tasks'}"
                              for t in info.object_types)
            lines.append(f"image {info.image} id {info.short_id}: {types}")
            lines += [f"  note: {n}" for n in format_notes(info, s.releases, s)]
        return [printable(line, limit=0) for line in lines]  # notes quote the image's templates

    def report(self) -> dict[str, Any] | None:
        """Report data of this process, merged with what xdist workers sent; None when nothing ran."""
        from . import finish, report_data

        self._sync_ledger()
        parts = list(self.session.xdist.worker_reports)
        if self.session.ledger.judgements or self.session.ledger.records:
            parts.append(report_data(self.session.ledger, self.settings))
        if not parts:
            return None
        merged = merge_reports(parts)
        cleanup = list(dict.fromkeys(p for part in parts for p in part.get("cleanup", [])))
        if cleanup:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "cleanup": cleanup}
        if self.session.xdist.lost_container_runs:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "container_runs": merged.get("container_runs", 0) + self.session.xdist.lost_container_runs}
        merged = {**merged, "command": ["pytest", *map(str, self.config.invocation_params.args)]}  # to reproduce
        return finish(merged)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .terminal import render_summary

        data = self.final or self.report()
        if data is None:
            for line in dict.fromkeys(self.session.xdist.xdist_notes + self.session.notes):  # e.g. every worker crashed
                terminalreporter.write_line(printable_lines(line))
            return
        terminalreporter.write_sep("=", "ymir-conformance verdict")
        for line in render_summary(data, quiet=self.config.get_verbosity() < 0):
            terminalreporter.write_line(line)
        loadgroup = self.config.getoption("dist", "no") == "loadgroup"
        for line in dict.fromkeys(self.session.xdist.xdist_notes + repeated_runs_lines(data, loadgroup) + self.session.notes
                                  + [CLEANUP_NOTE + p for p in data.get("cleanup", [])]):
            terminalreporter.write_line(printable_lines(line))
        if self.settings.keep and self.session._conductor is not None:
            terminalreporter.write_line(f"ymir-conformance: workspaces kept under {self.session._conductor.workdir}; "
                                        "containers kept (label org.ymir-conformance.session="
                                        f"{self.session.session_id})")

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the file: it carries the suite properties
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from . import finish, report_data, write_logs, write_reports

        self.session.interrupt.finishing = True
        if self.session.interrupt.terminating:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        workeroutput = getattr(self.config, "workeroutput", None)
        # the report's data and the run logs are read from the workspaces: both before the cleanup, whose
        # problems (a tree it could not remove) are then added as a note, never as a verdict or an exit status
        data: dict[str, Any] | None
        if workeroutput is not None:  # an xdist worker: the controller renders and writes the reports
            self._sync_ledger()
            data = report_data(self.session.ledger, self.settings)
        else:
            data = self.report()
        if self.settings.report_dir is not None and self.session._conductor is not None:
            try:  # each process (xdist worker or not) writes the logs of its own runs
                write_logs(self.session._conductor.records.values(), self.settings.report_dir)
            except OSError as exc:
                self.session.notes.append(f"ymir-conformance: run logs not written under {self.settings.report_dir}: {exc}")
        self.session.release()
        problems = list(dict.fromkeys(self.session.cleanup_problems))
        self.session.notes += [CLEANUP_NOTE + p for p in problems]
        if workeroutput is not None:
            workeroutput["ymir_report"] = json.dumps({**(data or {}), "cleanup": problems}, default=str)
        elif data is not None:
            data["cleanup"] = list(dict.fromkeys([*data.get("cleanup", []), *problems]))
            self.final = finish(data, exit_status=int(session.exitstatus))
            self.session.junit.junit_properties(self.final, int(session.exitstatus))
            if self.settings.report_dir is not None:
                write_reports(self.final, self.settings.report_dir)

    def _sync_ledger(self) -> None:
        fuzz = self.session.fuzz.results()
        if fuzz is not None:
            self.session.ledger.fuzz = fuzz
        if self.session._conductor is not None:
            self.session.ledger.container_runs = self.session._conductor.container_runs
            for rec in self.session._conductor.records.values():
                self.session.ledger.records[rec.spec.id] = rec


__all__ = ["SessionReport", "CLEANUP_NOTE"]
