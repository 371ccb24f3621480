"""pytest-xdist coordination (the model: xdist's ``dsession.py``). On the controller: choose each worker's session
id, make ``-n N`` schedule by group, collect the workers' report data, count their container runs from the
engine's events and reap what a crashed worker left. Registered next to the session plugin (plugin.py); the
'@group' node id suffix of the workers is xdist_groups.py.
"""
from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .session import RunSpec

if TYPE_CHECKING:
    from .plugin import YmirSession


class XdistCoordinator:
    """pytest-xdist: each container run on one worker, the controller reaps what a crashed worker left."""

    def __init__(self, session: YmirSession) -> None:
        self.session = session
        self.config = session.config
        self.settings = session.settings
        self.worker_reports: list[dict[str, Any]] = []  # pytest-xdist controller: one per worker
        self.worker_sessions: dict[int, tuple[str, str]] = {}  # id(node) -> (worker id, its session id)
        self.xdist_notes: list[str] = []  # controller: what the terminal summary says about the workers
        self.lost_container_runs = 0  # controller: container runs of crashed workers (they send no report)
        self.creates_by_session: dict[str, int] = {}  # controller: task containers created, per session id
        self._creates_watch: bool | None = None  # controller: None before the first worker, False if unavailable

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
            stream = self.session.conductor.cl.events(decode=True, filters={
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
                removed[0] = reap(self.session.conductor.cl, worker_session)
            except Exception:  # the engine went away
                pass
            problem = remove_tree((self.settings.workdir or Path(".ymir-work")) / worker_session, last=OWNER_FILE)
            if problem is not None:
                self.session.cleanup_problems.append(problem)

        t = threading.Thread(target=work, name=f"ymir-reap-{worker_session}", daemon=True)
        t.start()
        t.join(wait_s)
        return removed[0]


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



__all__ = ["XdistCoordinator", "repeated_runs_lines", "xdist_group_name"]
