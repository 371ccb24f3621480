"""The session plugin: hooks only; the work is delegated. The pytest11 entry point (entry.py) imports and
registers it from pytest_configure only when there are images to certify (``--image`` or the ``ymir_images``
ini value): without them a pytest run, ``pytest --help`` included, never imports this module.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
import warnings
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from .contracts.base import Area, Check, Finding, Level, Status, Violation, judge, render_all
from .platform import ReleaseRange
from .printable import printable, printable_lines
from .failure_text import Shown
from . import hyper, xdist_groups
from .errors import ConformanceError, SettingsError
from .entry import SESSION_KEY
# an install made before entry.py (an editable one keeps its pytest11 entry point until reinstalled) still loads
# this module as the entry point: it then gets the entry point's hooks and fixture from here
from .entry import pytest_addoption, pytest_configure, ymir  # noqa: F401
from .options import SETTINGS_KEY, Settings
from .platform import Release, describe
from .session import KIND_SHAPES, NEGATIVE_INPUTS, Conductor, RunRecord, RunSpec, format_notes, plan
from .verdict import Ledger, merge_reports, must_and_should

SYSTEM_OUT_KEY = pytest.StashKey[list[str]]()  # a test's findings, for its JUnit <system-out>
HEADLINE_KEY = pytest.StashKey[str]()  # a failed test's first violation: '[TR-02 MUST] ...'
SUITE_DIR = Path(__file__).parent / "suite"
CLEANUP_NOTE = "ymir-conformance: cleanup incomplete (the verdict and the exit status stand; a later session reaps the rest): "

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
    session.install_sigterm()
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
        self.worker_reports: list[dict[str, Any]] = []  # pytest-xdist controller: one per worker
        self.worker_sessions: dict[int, tuple[str, str]] = {}  # id(node) -> (worker id, its session id)
        self.xdist_notes: list[str] = []  # controller: what the terminal summary says about the workers
        self.notes: list[str] = []  # other lines for the end of the terminal summary (e.g. the JUnit family)
        self.shown = Shown()  # what failures printed already (fixes, first violations, runs' docker line + log)
        self.final: dict[str, Any] | None = None  # the report data as written at sessionfinish (with exit status)
        self.lost_container_runs = 0  # controller: container runs of crashed workers (they send no report)
        self.creates_by_session: dict[str, int] = {}  # controller: task containers created, per session id
        self._creates_watch: bool | None = None  # controller: None before the first worker, False if unavailable
        self._conductor: Conductor | None = None
        self.specs: list[RunSpec] | None = None
        self._fuzz: Any = None  # fuzz.search.FuzzDriver, made on first use (--ymir-fuzz)
        self._fuzz_targets: list[Any] | None = None
        from .runner import claim_session

        self.owner = claim_session(self.session_id, keep=settings.keep)
        self.reaped = ""  # the line saying what reap_stale removed at start, if anything
        self._prev_sigterm: Any = None
        self._fuzz_started = False
        self._fuzz_wanted: list[Any] = []  # the searches of the collected fuzz tests
        self._sigterm_installed = False
        self._terminating = False  # a SIGTERM arrived
        self._finishing = False  # sessionfinish began: a SIGTERM no longer interrupts the cleanup
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

    # -- interruption: SIGTERM (CI cancel, docker stop, kill) cleans up like Ctrl-C -----------------------
    def install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
            self._sigterm_installed = True
        except (ValueError, OSError):
            pass

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        first = not self._terminating
        self._terminating = True
        if first and not self._finishing:
            # the KeyboardInterrupt path: a running container is removed by run_container's finally, pytest
            # stops, sessionfinish writes the reports and removes this session's containers and workspaces
            raise KeyboardInterrupt("SIGTERM: ymir-conformance removes its containers and workspaces")
        sys.stderr.write("ymir-conformance: SIGTERM received, finishing the cleanup (SIGKILL leaves containers "
                         "and workspaces behind until the next session reaps them)\n")

    def restore_sigterm(self) -> None:
        if self._sigterm_installed:
            self._sigterm_installed = False
            try:
                signal.signal(signal.SIGTERM, self._prev_sigterm if self._prev_sigterm is not None
                              else signal.SIG_DFL)
            except (ValueError, OSError):
                pass

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
        self.force_xunit2()
        if self.reaped and getattr(self.config, "workerinput", None) is None:
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(self.reaped)
            else:
                sys.stderr.write(self.reaped + "\n")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._finishing = True
        self.join_inspection()
        try:
            self.release()
        finally:
            self.restore_sigterm()

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
    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """The fuzz tests are collected only when a search is asked for (--ymir-fuzz, --ymir-fuzz-training)."""
        if collection_path == SUITE_DIR / "test_fuzz.py" and not (self.settings.fuzz or self.settings.fuzz_training):
            return True
        return None

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
        if s.fuzz or s.fuzz_training:
            from .fuzz.search import describe_settings

            lines.append(describe_settings(s))
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

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        name = metafunc.function.__name__
        multi_image = len(self.settings.images) > 1
        if "ymir_image" in metafunc.fixturenames:
            images = list(self.settings.images)  # ids: the full image name (two namespaces may share a repo name)
            metafunc.parametrize("ymir_image", images, ids=images if multi_image else ["image"])
        if "ymir_fuzz" in metafunc.fixturenames:
            search = "training" if name == "test_fuzz_training" else "candidates"
            found = [t for t in self.fuzz_targets() if t.search == search]
            # no search asked for: one None parameter, deselected at collection (the test is not collected)
            metafunc.parametrize("ymir_fuzz", found or [None], ids=[t.test_id for t in found] or ["none"])
        if "ymir_spec" in metafunc.fixturenames:
            specs = self.all_specs()
            if name in TEST_KINDS:
                kinds = TEST_KINDS[name]
                specs = [s for s in specs if (s.kind in kinds if kinds is not None else s.kind not in NEGATIVE_KINDS)]
            if not specs:
                metafunc.parametrize("ymir_spec", [pytest.param(None, marks=pytest.mark.skip(
                    reason=self.why_no_runs(TEST_KINDS.get(name))))], ids=["none"])
                return
            metafunc.parametrize("ymir_spec", specs, ids=[spec_test_id(s, name) for s in specs])

    def why_no_runs(self, kinds: tuple[str, ...] | None) -> str:
        """The skip reason of a test no run was planned for, naming the real cause: the profile (or
        --ymir-tasks) asks for none of its task kinds, or nothing the image declares can run on the releases."""
        from .options import PROFILE_TASKS

        s = self.settings
        negative = kinds == NEGATIVE_KINDS
        tasks = sorted({"negative" if k.startswith("negative-") else k
                        for k in (kinds or tuple(k for k in KIND_SHAPES if k not in NEGATIVE_KINDS))})
        what = "negative-input runs" if negative else "/".join(tasks) + " runs"
        if not set(tasks) & set(s.tasks):
            if s.tasks == PROFILE_TASKS[s.profile]:
                hint = "the certify profile runs them, or add negative" if negative else f"add {tasks[0]}"
                return f"the {s.profile} profile plans no {what} ({hint} to --ymir-tasks)"
            return f"--ymir-tasks={','.join(s.tasks)} plans no {what}"
        return (f"no {what} planned: the image(s) declare no object type such a run can use on platform "
                f"{', '.join(str(r) for r in s.releases)}")

    # -- JUnit XML (xunit2, valid against the Jenkins/xunit2 schema) ----------------------------------------------
    def _junit(self) -> Any:
        from _pytest.junitxml import xml_key

        return self.config.stash.get(xml_key, None)

    def force_xunit2(self) -> None:
        """Rule results go where xunit2 allows them (suite properties, <system-out>): the plugin writes xunit2
        whatever junit_family says, since xunit1 adds attributes the Jenkins/xunit2 schema refuses."""
        xml = self._junit()
        if xml is not None and xml.family != "xunit2":
            self.notes.append(f"ymir-conformance: --junitxml written as junit_family=xunit2 (not {xml.family}): CI "
                              "systems validate against the xunit2 schema")
            xml.family = "xunit2"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        lines = item.stash.get(SYSTEM_OUT_KEY, None)
        if lines and report.when == "call":
            report.ymir_system_out = printable_lines("\n".join(lines))  # type: ignore[attr-defined]  # xdist carries it
        report.ymir_image = item_image(item, self.settings)  # type: ignore[attr-defined]
        headline = item.stash.get(HEADLINE_KEY, None)
        crash = getattr(report.longrepr, "reprcrash", None)
        if headline and report.failed and report.when == "call" and crash is not None:
            crash.message = headline  # JUnit's failure message and the short summary line: '[TR-02 MUST] ...'

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        xml = self._junit()
        if xml is None:
            return
        import xml.etree.ElementTree as ET

        from _pytest.junitxml import bin_xml_escape

        reporter = xml.node_reporter(report)
        image = getattr(report, "ymir_image", "")
        if image and "classname" not in reporter.attrs:
            reporter.add_attribute("classname", image)  # the CI UI groups the tests by image
        text = getattr(report, "ymir_system_out", "")
        if text:
            node = ET.Element("system-out")
            node.text = bin_xml_escape(text)
            reporter.nodes.append(node)

    def junit_properties(self, data: dict[str, Any], exit_status: int) -> None:
        xml = self._junit()
        if xml is None:
            return
        from .report.junit import junit_properties

        for name, value in junit_properties(data, exit_status):
            xml.add_global_property(printable(name, limit=0), printable(value, limit=0))

    # -- pytest-xdist: each container run on one worker, the controller reaps what a crashed worker left --------
    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Iterator[None]:
        # a wrapper: the markers go on before, and the group suffixes are checked after, every other plugin's
        # hook, among them xdist's worker hook (WorkerInteractor), which turns the xdist_group markers into the
        # '@group' node id suffix its loadgroup scheduler reads, on an attribute pytest >= 9.2 no longer reads
        # (xdist_groups.py).
        self._mark_runs(items)
        result = yield
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None and self.config.getvalue("loadgroup"):
            failed = xdist_groups.ensure_group_suffixes(items)
            if failed:  # a warning: xdist shows a worker's warnings in the controller's summary
                warnings.warn(pytest.PytestWarning(
                    f"ymir-conformance could not give {len(failed)} test(s) their xdist group under pytest "
                    f"{pytest.__version__} (e.g. {failed[0]}): their container runs may happen once per worker; "
                    "run with -n 0, or report this with your pytest and pytest-xdist versions"))
        return result

    def _mark_runs(self, items: list[pytest.Item]) -> None:
        # outer guard: pytest-timeout; a test may trigger training + retries before its own run
        guard = int(self.settings.budget.total_s * 1.5 * 3 * 3 + 120)
        xdist = self.config.pluginmanager.hasplugin("xdist")
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None and workerinput.get("ymir_loadgroup"):
            self.config.option.loadgroup = True  # the controller schedules by group (see pytest_configure_node)
        fuzz_guard = int(self.settings.fuzz_budget_s + 2 * guard)
        unused = [i for i in items if "ymir_fuzz" in getattr(getattr(i, "callspec", None), "params", {})
                  and i.callspec.params["ymir_fuzz"] is None]  # type: ignore[attr-defined]
        if unused:  # fuzz tests of a search nobody asked for (--ymir-fuzz, --ymir-fuzz-training): not collected
            items[:] = [i for i in items if i not in unused]
            self.config.hook.pytest_deselected(items=unused)
        for item in items:
            target = getattr(getattr(item, "callspec", None), "params", {}).get("ymir_fuzz")
            if target is not None:
                if item.get_closest_marker("timeout") is None:
                    item.add_marker(pytest.mark.timeout(fuzz_guard))
                if xdist:
                    item.add_marker(pytest.mark.xdist_group(xdist_group_name(target.spec)))
                continue
            spec = getattr(item, "callspec", None) and item.callspec.params.get("ymir_spec")  # type: ignore[attr-defined]
            if not isinstance(spec, RunSpec):
                continue
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(guard))
            if xdist:  # with --dist loadgroup, all tests that need one training land on one worker: run once
                item.add_marker(pytest.mark.xdist_group(xdist_group_name(spec)))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """The runs the collected (and not deselected) tests judge: the conductor's plan. Nothing starts here
        (``--collect-only`` runs no container): the first test's run schedules them, all of them, or on an xdist
        worker (handed test groups one at a time) the training group of that run."""
        self._fuzz_wanted = [t for item in session.items
                             if (t := getattr(getattr(item, "callspec", None), "params", {}).get("ymir_fuzz"))
                             is not None]
        if self.specs is None:
            return
        wanted = {spec for item in session.items
                  if isinstance(spec := getattr(getattr(item, "callspec", None), "params", {}).get("ymir_spec"),
                                RunSpec)}
        self.conductor.set_plan([s for s in self.specs if s in wanted],
                                eager=getattr(self.config, "workerinput", None) is None)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist controller, before a worker (or a crashed worker's replacement) starts: choose its
        session id, and make `-n N` (xdist's default ``--dist load``) schedule by group, as loadgroup does."""
        worker_session = uuid.uuid4().hex[:12]
        self.worker_sessions[id(node)] = (str(getattr(node.gateway, "id", "?")), worker_session)
        self._watch_creates()
        node.workerinput["ymir_session"] = worker_session
        if self.config.getoption("dist", "no") == "load":
            # the scheduler is made later (DSession.pytest_runtestloop), so this is still in time; the workers
            # re-parse the command line (dist 'no' or 'load') and are told to add the '@group' suffix
            self.config.option.dist = "loadgroup"
            self.xdist_notes.append("ymir-conformance: --dist load ran as --dist loadgroup: the tests that need "
                                    "one container run go to one worker, so each run happens once")
        node.workerinput["ymir_loadgroup"] = self.config.getoption("dist", "no") == "loadgroup"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """pytest-xdist controller: collect each worker's report data; reap what a worker left (a crashed one
        leaves its running container and its workspace). Never raises and never waits long: xdist calls this
        from its event loop, before it reports the crashed test and starts a replacement."""
        worker, worker_session = self.worker_sessions.pop(id(node), (str(getattr(getattr(node, "gateway", None),
                                                                                   "id", "?")), ""))
        try:
            part = getattr(node, "workeroutput", {}).get("ymir_report")
            if part:
                self.worker_reports.append(json.loads(part))
        except Exception as exc:  # a malformed report must not take the controller down
            self.xdist_notes.append(f"ymir-conformance: xdist worker {worker} sent unreadable report data ({exc})")
        removed = self._reap_worker(worker_session)
        if error:
            ran = self.creates_by_session.get(worker_session, 0)
            self.lost_container_runs += ran
            counted = (f"its {ran} container run(s) are in the count" if self._creates_watch
                       else "its container runs are not in the count (no engine events)")
            self.xdist_notes.append(
                f"ymir-conformance: xdist worker {worker} crashed ({error}): the test it was running failed; xdist "
                "hands the rest of its group to another worker, or stops the run at --max-worker-restart; "
                f"{counted}; removed {removed} container(s) it left" + ("" if self.settings.keep else
                                                                          " and its workspace"))

    def _watch_creates(self) -> None:
        """Controller: count the task containers the engine creates per session, from a live subscription to its
        event stream (a crashed worker sends no report, so this is how its runs are counted). Live, because
        the engine keeps only its last 256 events for later `since` queries: on a busy engine they are gone."""
        if self._creates_watch is not None:
            return
        from .runner import LABEL_RUN, LABEL_SESSION

        try:
            stream = self.conductor.cl.events(decode=True, filters={
                "type": "container", "event": "create", "label": LABEL_SESSION})
        except Exception:  # no events: crashed workers' runs are then not counted (the note says so)
            self._creates_watch = False
            return
        self._creates_watch = True

        def read() -> None:
            try:
                for ev in stream:
                    attrs = ev.get("Actor", {}).get("Attributes", {})
                    if attrs.get(LABEL_RUN, "inspect") != "inspect":
                        session = attrs.get(LABEL_SESSION, "")
                        self.creates_by_session[session] = self.creates_by_session.get(session, 0) + 1
            except Exception:  # closed at cleanup, or the engine went away
                pass

        threading.Thread(target=read, name="ymir-engine-events", daemon=True).start()
        self.config.add_cleanup(stream.close)

    def _reap_worker(self, worker_session: str, wait_s: float = 30) -> int:
        """Remove the containers (and the workspace) of a worker's session. Bounded: done in a thread joined for
        ``wait_s``, so an engine that does not answer cannot hold xdist's event loop (what is not removed then,
        a later session's reap_stale removes by its owner labels). Returns how many containers it removed."""
        if not worker_session or self.settings.keep:
            return 0
        removed = [0]

        def work() -> None:
            from .owner import OWNER_FILE
            from .rmtree import remove_tree
            from .runner import reap

            try:
                removed[0] = reap(self.conductor.cl, worker_session)
            except Exception:  # the engine went away
                pass
            problem = remove_tree((self.settings.workdir or Path(".ymir-work")) / worker_session, last=OWNER_FILE)
            if problem is not None:
                self.cleanup_problems.append(problem)

        t = threading.Thread(target=work, name=f"ymir-reap-{worker_session}", daemon=True)
        t.start()
        t.join(wait_s)
        return removed[0]

    def report(self) -> dict[str, Any] | None:
        """Report data of this process, merged with what xdist workers sent; None when nothing ran."""
        from .report import finish, report_data

        self._sync_ledger()
        parts = list(self.worker_reports)
        if self.ledger.judgements or self.ledger.records:
            parts.append(report_data(self.ledger, self.settings))
        if not parts:
            return None
        merged = merge_reports(parts)
        cleanup = list(dict.fromkeys(p for part in parts for p in part.get("cleanup", [])))
        if cleanup:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "cleanup": cleanup}
        if self.lost_container_runs:  # a copy: merge_reports returns a single part as it is
            merged = {**merged, "container_runs": merged.get("container_runs", 0) + self.lost_container_runs}
        merged = {**merged, "command": ["pytest", *map(str, self.config.invocation_params.args)]}  # to reproduce
        return finish(merged)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .report.terminal import render_summary

        data = self.final or self.report()
        if data is None:
            for line in dict.fromkeys(self.xdist_notes + self.notes):  # e.g. every worker crashed
                terminalreporter.write_line(printable_lines(line))
            return
        terminalreporter.write_sep("=", "ymir-conformance verdict")
        for line in render_summary(data, quiet=self.config.get_verbosity() < 0):
            terminalreporter.write_line(line)
        loadgroup = self.config.getoption("dist", "no") == "loadgroup"
        for line in dict.fromkeys(self.xdist_notes + repeated_runs_lines(data, loadgroup) + self.notes
                                  + [CLEANUP_NOTE + p for p in data.get("cleanup", [])]):
            terminalreporter.write_line(printable_lines(line))
        if self.settings.keep and self._conductor is not None:
            terminalreporter.write_line(f"ymir-conformance: workspaces kept under {self._conductor.workdir}; "
                                        "containers kept (label org.ymir-conformance.session="
                                        f"{self.session_id})")

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the file: it carries the suite properties
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report import finish, report_data, write_logs, write_reports

        self._finishing = True
        if self._terminating:
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
            self.junit_properties(self.final, int(session.exitstatus))
            if self.settings.report_dir is not None:
                write_reports(self.final, self.settings.report_dir)

    def _sync_ledger(self) -> None:
        if self._fuzz is not None:
            self.ledger.fuzz = self._fuzz.results()
        if self._conductor is not None:
            self.ledger.container_runs = self._conductor.container_runs
            for rec in self._conductor.records.values():
                self.ledger.records[rec.spec.id] = rec

    # -- used by the suite ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec) -> RunRecord:
        self.start_fuzz()
        return self.conductor.get(spec)

    # -- fuzzing (--ymir-fuzz, --ymir-fuzz-training; fuzz/search.py) -------------------------------------------
    def fuzz_targets(self) -> list[Any]:
        """The searches asked for (fuzz/search.py ``targets``), planned once."""
        if self._fuzz_targets is None:
            from .fuzz.search import targets

            self._fuzz_targets = []
            if self.settings.fuzz or self.settings.fuzz_training:
                self.all_specs()
                self._fuzz_targets = targets([self.ledger.images[i] for i in self.settings.images], self.settings)
        return self._fuzz_targets

    @property
    def fuzz(self) -> Any:
        if self._fuzz is None:
            from .fuzz.search import FuzzDriver

            self._fuzz = FuzzDriver(self.conductor, self.settings)
        return self._fuzz

    def start_fuzz(self) -> None:
        """Start every collected search with the session's first run (they run beside the other tests); an xdist
        worker starts a search only when its test comes (tests are handed to it one group at a time)."""
        if self._fuzz_started or getattr(self.config, "workerinput", None) is not None:
            return
        self._fuzz_started = True
        if self._fuzz_wanted:
            self.fuzz.start(self._fuzz_wanted)

    def judge_fuzz(self, target: Any, node: pytest.Item) -> None:
        """The outcome of one search: a failure names the minimal failing input, its rules and the reproducer."""
        self.start_fuzz()
        search = self.fuzz.wait(target)
        result = search.result()
        lines = [f"fuzz {target.search} of {target.image}: {result['tried']} input(s) tried of {target.examples} "
                 f"asked ({result['passed_trivially']} passed without a run after the budget), coverage "
                 f"{result['coverage']}"]
        node.stash[SYSTEM_OUT_KEY] = lines
        if search.error:
            pytest.fail(f"ymir-conformance could not fuzz {target.image}: {search.error}. This is a defect of "
                        "ymir-conformance, not a verdict on the image: please report it.", pytrace=False)
        if search.skipped:
            self.skip(search.skipped)
        if result["failure"] is None:
            return
        best = search.best
        self.ledger.add(target.image, f"fuzz-{target.search}", "fuzz", best.per_release)
        text = search.message()
        node.stash[SYSTEM_OUT_KEY] = lines + text.splitlines()
        node.stash[HEADLINE_KEY] = f"[fuzz {', '.join(result['failure']['rules'])} MUST] " + text.split("\n", 1)[0]
        pytest.fail(text, pytrace=False)

    def skip_or_fail(self, record: RunRecord) -> NoReturn:
        """A record without an outcome: a skip with its reason, or a failure when ymir-conformance itself broke."""
        if record.error:
            pytest.fail(f"ymir-conformance could not run {record.spec.kind} run {record.spec.id}: {printable(record.error, 0)}. "
                        "This is a defect of ymir-conformance, not a verdict on the image: please report it with "
                        "the workspace (--ymir-keep).", pytrace=False)
        self.skip(record.skipped)

    def skip(self, reason: str) -> NoReturn:
        """Skip, except in the certify profile, which may skip nothing the image declares."""
        reason = printable(reason, limit=0)
        if self.settings.profile == "certify" and "declares no" not in reason:
            pytest.fail(f"certify profile: nothing the image declares may be skipped, but: {reason}", pytrace=False)
        pytest.skip(reason)

    def judge_area(self, spec: RunSpec, record: RunRecord, areas: tuple[Area, ...], subject_area: str,
                   node: pytest.Item) -> None:
        if record.outcome is None:
            self.skip_or_fail(record)
        members = spec.judged_on or (spec.release,)
        per_release = {r: judge(record.outcome, r, areas) for r in members}
        self.ledger.add(spec.image, spec.id, subject_area, per_release)
        conclude(per_release, self.settings, node, context=f"{spec.kind} run {spec.id}"
                 + (f" ({record.model_note})" if record.model_note else ""),
                 detail=lambda test, verbose: self.run_detail(record, test, verbose), shown=self.shown)

    def run_detail(self, record: RunRecord, test: str, verbose: bool) -> list[str]:
        """What a failure says about its run, the first time a failure of the run is shown: its exit, the error
        found in its log (excerpt.py), its last lines, where the whole log is, and its docker command (shortened;
        with ``verbose`` in full and the last 15 lines). Later failures of the run point to that one. The first
        line continues the failure's 'run ..., platform ...:' line."""
        from . import failure_text
        from .excerpt import SHORT_TAIL, TAIL, read_excerpt
        from .printable import log_line

        key = (record.spec.image, record.spec.id)
        first = self.shown.runs.setdefault(key, test)
        if first != test:
            return [f"its docker command and log: see {first} above"]
        o = record.outcome
        if o is None:
            return []
        status = ("timed out" if o.timed_out else f"exit {o.exit_code}") + f" after {o.duration_s:.1f} s"
        ex = read_excerpt(o.out_dir)
        where = self.log_location(record)
        found = ex.render(verbose)
        lines = [status]
        if ex.problem:
            lines[0] += f"; {ex.problem}"
        elif not found and not verbose and o.exit_code == 0 and not o.timed_out:
            lines[0] += f"; no error in its log {where}"
        else:
            lines += found
            tail = ex.tail[-(TAIL if verbose or not found else SHORT_TAIL):]
            if tail:
                lines += [f"last {len(tail)} lines of /out/ymir-executor-out.log:"] + [log_line(t) for t in tail]
            else:
                lines.append("/out/ymir-executor-out.log is empty")
            lines.append(f"log: {where}")
        if o.argv:
            if verbose:
                lines.append(f"docker command: {' '.join(o.argv)}")
            else:
                short = failure_text.short_command(o.argv)
                shown_in = self.shown.commands.setdefault(failure_text.same_shape(short), test)
                if shown_in == test:
                    lines.append(f"  {short}")
                else:
                    lines[0] += f"; docker command like {shown_in}'s above"
        return lines

    def log_location(self, record: RunRecord) -> str:
        """Where the run's whole log is, and whether it is kept: logs/<image>/<run>.log in the report
        directory, else the workspace's /out/ymir-executor-out.log."""
        from .report import log_name

        s = self.settings
        if s.report_dir is not None:
            return f"{_nearby(s.report_dir / log_name(record.spec.image, record.spec.id))} (its last MiB, kept)"
        assert record.outcome is not None
        path = _nearby(record.outcome.out_dir / "ymir-executor-out.log")
        if s.keep:
            return f"{path} (kept: --ymir-keep)"
        return f"{path} (not kept: --ymir-report-dir keeps logs)"

    def judge_negative(self, spec: RunSpec, record: RunRecord, node: pytest.Item) -> None:
        """The image must cope (exit 0 with valid outputs) or fail cleanly: non-zero exit, monitor state 4 with
        a 3000xx code, the reason in the last log lines. Never hang, never exit 0 with garbage."""
        if record.outcome is None:
            self.skip_or_fail(record)
        o = record.outcome
        rule, what, _ = NEGATIVE_INPUTS[spec.kind.removeprefix("negative-")]
        target = max(spec.judged_on or (spec.release,))
        context = f"negative input '{what}' ({spec.id})"
        if o.succeeded:  # coped: its outputs must still hold
            findings = judge(o, target, (Area.TRAINING, Area.MONITOR))
        else:
            findings = [f for f in judge(o, target, (Area.LIFECYCLE, Area.MONITOR), with_consequences=False)
                        if f.check.rule != "V1"]  # refusing the input is allowed: MON-07 etc. fail on their own
            clean = _clean_failure(o)
            chk = Check(rule=rule, title="copes with odd input or fails cleanly", area=Area.LIFECYCLE,
                        levels=((ReleaseRange.parse("all"), Level.SHOULD),), func=lambda view: ())
            violations = [] if clean is None else [Violation(
                rule, f"the image neither coped with the input ({what}) nor failed cleanly: {clean}",
                file="/out/monitor.txt", level=Level.SHOULD,
                expected="success, or monitor state 4 with a 3000xx code, the reason last in the log and a non-zero exit",
                fix="validate inputs up front; on unusable input write monitor state 4 with the matching 3000xx "
                    "code (300001 config, 300002 dataset, 300003 image) and print the reason last, then exit 1")]
            findings.append(Finding(chk, Status.FAILED if violations else Status.PASSED, Level.SHOULD, violations))
        self.ledger.add(spec.image, spec.id, "negative", {target: findings})
        conclude({target: findings}, self.settings, node, context=context,
                 detail=lambda test, verbose: self.run_detail(record, test, verbose), shown=self.shown)

    def judge_image(self, image: str, node: pytest.Item) -> None:
        info = self.conductor.info(image)
        per_release = {r: info.findings(r) for r in self.settings.releases}
        self.ledger.add(image, "image", "image", per_release)
        conclude(per_release, self.settings, node, context=f"image {image}", detail=lambda test, verbose: [],
                 shown=self.shown)


def spec_test_id(spec: RunSpec, test_name: str) -> str:
    """The id of a test over ``spec``: the run id (``det-voc``; lifecycle and monitor of a training
    ``training-det-voc``), after the full image name when several images run
    (``ymir-conformance/reference-det:latest/det-voc``: the namespace is kept, the repo name alone can clash)."""
    from dataclasses import replace

    run = replace(spec, multi_image=False).id
    if spec.kind == "training" and test_name in ("test_lifecycle", "test_monitor"):
        run = f"training-{run}"
    return f"{spec.image}/{run}" if spec.multi_image else run


def item_image(item: pytest.Item, settings: Settings) -> str:
    """The image a suite test judges (for its JUnit classname)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    spec = params.get("ymir_spec")
    if isinstance(spec, RunSpec):
        return spec.image
    image = params.get("ymir_image")
    if isinstance(image, str):
        return image
    return settings.images[0] if len(settings.images) == 1 else ""


def xdist_group_name(spec: RunSpec) -> str:
    """The xdist_group of every test that needs ``spec``'s training. xdist's loadgroup scheduler takes the text
    after the node id's last '@' (when that follows the last ']') as the group: no '@', '[' or ']' inside, or an
    image digest (repo@sha256:...) or a release family (det-voc@2.4) would merge unrelated groups."""
    name = f"ymir:{spec.image}:{spec.training_spec().id}"
    return name.replace("@", "%40").replace("[", "%5B").replace("]", "%5D")


def repeated_runs_lines(data: dict[str, Any], loadgroup: bool = False) -> list[str]:
    repeated: dict[str, int] = data.get("repeated_runs") or {}
    if not repeated:
        return []
    advice = ("although --dist loadgroup was given: the tests of one training reached several workers (report "
              "this with your pytest and pytest-xdist versions; -n 0 runs each once)" if loadgroup
              else "use --dist loadgroup to run each once")
    return [f"ymir-conformance: {len(repeated)} run(s) happened on more than one xdist worker (each counted): "
            + ", ".join(f"{k} x{v}" for k, v in sorted(repeated.items())) + "; " + advice]


def _clean_failure(o: Any) -> str | None:
    """None when a failed run failed cleanly (state 4 + 3000xx code), else what was missing."""
    from . import guard
    from .errors import UnsafeOutput
    from .progress import parse_record

    if o.timed_out:
        return "it hung until the time limit"
    try:
        raw = guard.read_text(o.out_dir, "monitor.txt", guard.CAPS["monitor"])
    except FileNotFoundError:
        return "no /out/monitor.txt"
    except UnsafeOutput as exc:
        return f"/out/monitor.txt {exc.problem}"
    except OSError as exc:
        return f"/out/monitor.txt cannot be read: {exc.strerror or exc}"
    rec = parse_record(raw)
    fields = raw.split("\n", 1)[0].split("\t")
    if rec is None or rec[2] != 4:
        first = raw.splitlines()[0][:200] if raw else "(empty)"
        return f"exit {o.exit_code} but monitor.txt line 1 is {printable(repr(first))}, not state 4"
    if len(fields) < 5 or not fields[4].strip().startswith("3000"):
        found = printable(repr(fields[4][:40] if len(fields) > 4 else "nothing"))
        return f"state 4 without a 3000xx code in column 5 (found {found})"
    return None


def _nearby(path: Path) -> str:
    """``path`` relative to the working directory when it is beneath it, else absolute."""
    import os

    full = path.absolute()
    try:
        return str(full.relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(full)


def conclude(per_release: dict[Release, list[Finding]], settings: Settings, node: pytest.Item | None, context: str,
             detail: Callable[[str, bool], list[str]], shown: Shown | None = None) -> None:
    """Turn one test's findings (per judged release) into its outcome.

    The test fails on MUST violations (and SHOULD with --ymir-strict) on a gated release (--ymir-gate, default
    every judged release): the failure text starts with the violations (``[TR-02 MUST] ...``), then what was
    judged, then ``detail(test, verbose)`` (the run's exit, log excerpt and docker command, once per run).
    By default the text is sized for a human (failure_text.py: per rule the first violation in full and the
    others counted, each fix once, a shortened docker command); with -v (verbosity >= 1) every violation and
    the full docker command. Violations on releases that do not gate are reported, never failed. Every finding
    goes to the test's JUnit <system-out>; SHOULD violations are never Python warnings: the ymir-conformance
    summary lists them.
    """
    from . import failure_text

    releases = sorted(per_release)
    gated = [r for r in releases if r in settings.gated]

    def blocking_on(r: Release) -> list[Finding]:
        must, should = must_and_should(per_release[r])
        return must + (should if settings.strict else [])

    failing = [r for r in gated if blocking_on(r)]
    with_findings = [r for r in releases if any(f.status is Status.FAILED for f in per_release[r])]
    shown_on = max(failing) if failing else max(with_findings) if with_findings else max(releases)
    findings = per_release[shown_on]
    must, should = must_and_should(findings)
    on = describe([r for r in releases if _rules(per_release[r]) == _rules(findings)]) if len(releases) > 1 \
        else str(shown_on)
    out = [f"{context}: judged on platform {', '.join(str(r) for r in releases)}"
           + (f" (gating: {', '.join(str(r) for r in gated) or 'none'})" if settings.gate else "")]
    for f in findings:
        if f.status is not Status.NOT_APPLICABLE:
            out.append(f"  {f.check.rule:<8} {f.status}" + (f" ({f.level}, {f.check.basis})" if f.level else "")
                       + (f": {f.reason}" if f.reason and f.status is not Status.PASSED else ""))
    if must or should:
        out += ["", f"violations on platform {on}:"] + render_all([v for f in must + should for v in f.violations])
    others = [r for r in with_findings if _rules(per_release[r]) != _rules(findings)]
    for r in others:
        out.append(f"also on platform {r}: " + ", ".join(f"{rule} {lvl}" for rule, lvl in sorted(_rules(per_release[r]))))
    if node is not None:
        node.stash[SYSTEM_OUT_KEY] = out
    if failing:
        blocking = blocking_on(shown_on)
        violations = [v for f in blocking for v in f.violations]
        rest = [v for f in (must + should) if f not in blocking for v in f.violations]
        rules = sorted({f.check.rule for f in blocking})
        test = node.name if node is not None else context
        verbose = node is None or node.config.get_verbosity() >= 1
        summary = f"{len(violations)} violation(s) of {', '.join(rules)} on platform {on}, by {context}"
        if verbose:
            text = render_all(violations) + ["", summary]
            if rest:
                text += ["also (SHOULD, not failing):"] + render_all(rest)
        else:
            memo = shown if shown is not None else failure_text.Shown()
            text = failure_text.violations(violations, memo, test)
            if rest:
                text += ["also (SHOULD, not failing):"] + failure_text.violations(rest, memo, test)
        not_gating = [r for r in with_findings if r not in settings.gated]
        if not_gating:
            text.append(f"reported, not gating (--ymir-gate): findings on platform {describe(not_gating)}")
        more = detail(test, verbose)
        if more:  # one line for the run: '<kind> run <id>, platform 2.5: exit 0 after ...'
            text += [f"{context}, platform {on}: {more[0]}"] + more[1:]
        elif not verbose:
            text.append(summary)
        if node is not None:  # JUnit's failure message and the short summary: the first violation's own line
            first = violations[0].render(with_fix=False) if violations else text[0]
            node.stash[HEADLINE_KEY] = printable(first.split("\n", 1)[0], limit=0)
        pytest.fail(printable_lines("\n".join(text)), pytrace=False)  # the one failure text: printable only
    not_eval = [f for f in findings if f.status is Status.NOT_EVALUATED]
    if not_eval and not any(f.status is Status.PASSED and f.level is Level.MUST for f in findings):
        pytest.skip(f"not evaluated: {not_eval[0].reason} (see test_lifecycle for why)")


def _rules(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.check.rule, str(f.level)) for f in findings if f.status is Status.FAILED}


__all__ = ["YmirSession", "SETTINGS_KEY", "SESSION_KEY", "conclude", "start_session", "pytest_addoption",
           "pytest_configure", "ymir"]
