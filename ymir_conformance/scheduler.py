"""The scheduler of a session's runs (the conductor's first room, conductor.py): runs as futures on ``--ymir-jobs``
job slots, each at most once; a training group's downstream runs once its training is done (or parked on another
format's training that may give a model); the engines (``--ymir-engines``: one per training group, engines.py).
What one run does is the conductor's ``_execute`` (execution.py).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .image import ImageInfo
from .options import Settings
from .session import RunRecord, RunSpec, input_family, is_group_root, plan

if TYPE_CHECKING:
    from .engines import EnginePool
    from .workspace import Workspace


class Scheduler:
    """Runs as futures: :meth:`set_plan`, :meth:`get` (each run once), :meth:`close`; the state is the
    conductor's (``Conductor.__init__``)."""

    settings: Settings
    session_id: str
    workdir: Path
    infos: dict[str, ImageInfo]
    records: dict[RunSpec, RunRecord]
    jobs: int
    pool: EnginePool
    _lock: threading.RLock
    _futures: dict[RunSpec, Future[RunRecord]]
    _plan: list[RunSpec] | None
    _eager: bool
    _groups: set[RunSpec]
    _waiting: dict[RunSpec, list[RunSpec]]
    _executor: ThreadPoolExecutor | None
    _sources: dict[RunSpec, list[RunSpec]]
    _closing: bool

    def _execute(self, spec: RunSpec) -> RunRecord:
        """One run, from its workspace to its record: the conductor's run execution (execution.py)."""
        raise NotImplementedError

    def _execute_custom(self, spec: RunSpec, build: Callable[[], Workspace]) -> RunRecord:
        """One run of a workspace ``build`` makes, never retried: the conductor's run execution (execution.py)."""
        raise NotImplementedError

    def transfer_for(self, engine: Any, image: str) -> str:
        """bind or archive for ``engine`` (probed once per engine; raises transfer.TransferError when bind is
        forced on an engine that cannot see the workdir)."""
        from .runner import inspect_labels

        return self.pool.resolve(engine, image, self.workdir, self.settings.limits.create_kwargs(), inspect_labels())

    def set_plan(self, specs: Iterable[RunSpec], eager: bool = True) -> None:
        """The runs the collected tests judge. The first :meth:`get` schedules them: all of them (``eager``), or
        (an xdist worker, which is handed test groups one at a time) the training group of the run asked for."""
        with self._lock:
            self._plan = list(dict.fromkeys(specs))
            self._eager = eager

    def get(self, spec: RunSpec) -> RunRecord:
        """The run of ``spec``, executed at most once: even a run that raised is recorded (with the error), so
        no test repeats it. Schedules what is not yet scheduled (:meth:`set_plan`) and waits for this run only."""
        with self._lock:
            record = self.records.get(spec)
            if record is not None:
                return record
            future = self._futures.get(spec)
            if future is None:
                self._schedule(spec)
                future = self._futures.get(spec)
        if future is None:  # not submitted: waits on its training, which is running or queued
            future = self._await_submission(spec)
        try:
            return _result(future)
        except CancelledError:  # the session is stopping (close())
            with self._lock:
                return self.records.setdefault(spec, RunRecord(spec, None, None, skipped="not run: the session "
                                                               "was stopped before this run started"))

    def _await_submission(self, spec: RunSpec) -> Future[RunRecord]:
        """Wait until the training ``spec`` is parked on (its own, or another format's when its own failed) has
        submitted it; a cancelled future when the session stopped first."""
        while True:
            with self._lock:
                future = self._futures.get(spec)
                if future is not None:
                    return future
                holder = next((t for t, parked in self._waiting.items() if spec in parked), None)
                root = self._futures.get(holder) if holder is not None else None
                if root is None or root.done():  # nothing will submit it any more: the session is stopping
                    future = Future()
                    future.cancel()
                    self._futures[spec] = future
                    return future
            try:
                _result(root)
            except CancelledError:
                pass

    def _schedule(self, spec: RunSpec) -> None:
        """Submit (under ``_lock``) ``spec``'s training group, or every group of the plan when eager: each group's
        training and negative-input runs at once, its other runs when the training is done."""
        plan = self._plan or []
        if self._eager and plan:
            groups = list(dict.fromkeys(s.training_spec() for s in plan))
        else:
            groups = [spec.training_spec()]
        if spec.training_spec() not in groups:
            groups.append(spec.training_spec())
        for root in groups:
            members = [s for s in plan if s.training_spec() == root]
            if root == spec.training_spec() and spec not in members:
                members.append(spec)
            self._schedule_group(root, members)

    def _schedule_group(self, training: RunSpec, members: list[RunSpec]) -> None:
        new = training not in self._groups
        self._groups.add(training)
        if new:
            self._submit(training)
        for s in members:
            if s in self._futures or s in self.records:
                continue
            if is_group_root(s):
                self._submit(s)
            elif training in self.records:
                self._release(s)
            elif s not in self._waiting.setdefault(training, []):
                self._waiting[training].append(s)

    def _release(self, spec: RunSpec) -> None:
        """(Under ``_lock``.) A downstream run whose group's training is done: submit it when a model is chosen
        (or none can be), else park it on the next training that may give one (another format's)."""
        pending = self._pending_source(spec)
        if pending is None:
            self._submit(spec)
            return
        self._schedule_group(pending, [])
        parked = self._waiting.setdefault(pending, [])
        if spec not in parked:
            parked.append(spec)

    def _pending_source(self, spec: RunSpec) -> RunSpec | None:
        """The first training, in :meth:`model_sources` order, that is not done while every one before it
        produced no model; None when the model is known (or none can come)."""
        for src in self.model_sources(spec.training_spec()):
            rec = self.records.get(src)
            if rec is None:
                return src
            if rec.model is not None:
                return None
        return None

    def model_sources(self, training: RunSpec) -> list[RunSpec]:
        """The trainings whose model the downstream runs of ``training``'s group may use, in order: its own (the
        declared format's, see :func:`training_formats`), then the other formats' trainings the session plans for
        the same image, object type and input family. Only those the collected tests plan (or, without a plan,
        every one :func:`plan` makes), so a session that trains one format never trains another for this."""
        with self._lock:
            known = self._sources.get(training)
            if known is not None:
                return known
            info = self.infos.get(training.image)
            found = [training]
            if info is not None and training.kind == "training":
                planned = set(self._plan) if self._plan is not None else None
                for s in plan([info], self.settings):
                    s = replace(s, multi_image=training.multi_image)
                    if (s.kind == "training" and s != training and s.object_type == training.object_type
                            and input_family(s.release) == input_family(training.release)
                            and (planned is None or s in planned)):
                        found.append(s)
            self._sources[training] = found
            return found

    def _submit(self, spec: RunSpec) -> None:
        if spec in self._futures or spec in self.records:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.jobs, thread_name_prefix="ymir-run")
        ready = time.monotonic()
        try:
            self._futures[spec] = self._executor.submit(self._run_spec, spec, ready)
        except RuntimeError:  # shut down: the session is stopping
            future: Future[RunRecord] = Future()
            future.cancel()
            self._futures[spec] = future

    def _run_spec(self, spec: RunSpec, ready_at: float) -> RunRecord:
        """One run on a job slot: build its workspace, run it (with its diagnosis retries, in turn), record it,
        and submit the runs that were waiting for it."""
        picked = time.monotonic()
        if self._closing:
            record = RunRecord(spec, None, None, skipped="not run: the session was stopped before this run started")
        else:
            try:
                record = self._execute(spec)
            except Exception as exc:  # a defect of ymir-conformance: recorded once, failed (never "untested")
                record = RunRecord(spec, None, None, error=f"{type(exc).__name__}: {exc}"[:2000])
        record.ready_at, record.picked_at = ready_at, picked
        with self._lock:
            self.records[spec] = record
            for waiting in self._waiting.pop(spec, []):
                if is_group_root(waiting):
                    self._submit(waiting)
                else:
                    self._release(waiting)
        return record

    def run_custom(self, spec: RunSpec, build: Callable[[], Workspace]) -> RunRecord:
        """One container run of a workspace ``build`` makes (the fuzzer's inputs), on a job slot of the scheduler
        (``--ymir-jobs``), judged like any run but never recorded as one of the plan's runs and never retried
        (no diagnosis). Waits for it; a stopping session gives a record without outcome."""
        stopped = RunRecord(spec, None, None, skipped="not run: the session was stopped before this run started")
        with self._lock:
            if self._closing:
                return stopped
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.jobs, thread_name_prefix="ymir-run")
            try:
                future = self._executor.submit(self._run_custom, spec, build, time.monotonic())
            except RuntimeError:  # shut down: the session is stopping
                return stopped
        try:
            return _result(future)
        except CancelledError:
            return stopped

    def _run_custom(self, spec: RunSpec, build: Callable[[], Workspace], ready_at: float) -> RunRecord:
        picked = time.monotonic()
        if self._closing:
            return RunRecord(spec, None, None, skipped="not run: the session was stopped before this run started")
        record = self._execute_custom(spec, build)
        record.ready_at, record.picked_at = ready_at, picked
        return record

    def close(self, stop_running: bool = False) -> None:
        """Stop scheduling: queued runs are cancelled; running ones finish (or end when their container is
        removed). Does not wait. ``stop_running`` (--ymir-keep, where nothing reaps them): kill this session's
        running containers, which stay, stopped, for debugging; else the process would wait for them at exit."""
        with self._lock:
            self._closing = True
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
        if stop_running and self._executor is not None:
            from .runner import LABEL_SESSION

            for cl in self.pool.clients():
                try:
                    for c in cl.containers.list(filters={"label": f"{LABEL_SESSION}={self.session_id}",
                                                         "status": "running"}, ignore_removed=True):
                        c.kill()
                except Exception:  # gone already, or the engine went away
                    pass

    def timeline(self) -> dict[str, Any]:
        """Scheduler figures for the report: jobs, and the span from the first container start to the last end."""
        with self._lock:
            starts = [r.started_at for r in self.records.values() if r.started_at is not None]
            ends = [r.finished_at for r in self.records.values() if r.finished_at is not None]
        return {"jobs": self.jobs, "span_s": round(max(ends) - min(starts), 3) if starts and ends else None}


def _result(future: Future[RunRecord]) -> RunRecord:
    """``future.result()``, waking up often: a SIGINT/SIGTERM the kernel delivers to another thread (a run's) does
    not interrupt the main thread's untimed lock wait, so its KeyboardInterrupt would wait for the run to end."""
    while True:
        try:
            return future.result(timeout=0.2)
        except TimeoutError:
            continue


__all__ = ["Scheduler"]
