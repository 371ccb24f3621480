"""The conductor: runs each planned spec (session.py) at most once per session, trains once per (image, format,
family) and reuses the model package for every downstream task, and executes the diagnosis policy of
:mod:`ymir_conformance.diagnosis` on a failed run (``--ymir-diagnose``): by default one retry, only when the log
shows evidence (a permission error: as root, LC-09; an empty gpu_id parsed as a number: gpu_id '0' and still no
GPU, LC-07), each under the first run's containment. A root retry that works is the judged run; a gpu_id or
network retry that works leaves the failed run judged (the platform fails the task, V1) with the diagnosis
recorded.

Its rooms: scheduler.py (futures, jobs, engines), execution.py (a spec's workspace and its run), model_cache.py
(the trained-model cache), diagnosis_runs.py (the retries and their networks); here: the state they share, image
inspection and the cleanup.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import docker

from .diagnosis_runs import DiagnosisRuns
from .execution import RunExecution
from .image import ImageInfo, inspect_image
from .model_cache import ModelCache
from .options import Settings
from .rmtree import remove_tree
from .scheduler import Scheduler
from .session import INSPECT_FETCHES, RunRecord, RunSpec


class Conductor(RunExecution, DiagnosisRuns, ModelCache, Scheduler):
    """Runs specs at most once per session; owns workspaces, the model cache and the Docker client."""

    def __init__(self, cl: docker.DockerClient, settings: Settings, workdir: Path, session_id: str,
                 cache_dir: Path | None = None) -> None:
        self.cl = cl
        self.settings = settings
        self.workdir = workdir
        self.cache_dir = cache_dir or workdir.parent / "model-cache"
        self.session_id = session_id
        self.infos: dict[str, ImageInfo] = {}
        self.records: dict[RunSpec, RunRecord] = {}
        self.container_runs = 0
        # the scheduler (runs as futures): _lock guards records, container_runs and the schedule below
        self.jobs = max(1, settings.jobs)
        self._lock = threading.RLock()
        self._info_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._futures: dict[RunSpec, Future[RunRecord]] = {}
        self._plan: list[RunSpec] | None = None  # the runs the collected tests judge, in plan order
        self._eager = True  # schedule the whole plan on the first get(), not only the asked-for run's group
        self._groups: set[RunSpec] = set()  # training specs whose group is scheduled
        self._waiting: dict[RunSpec, list[RunSpec]] = {}  # training spec -> runs submitted once it is done
        self._executor: ThreadPoolExecutor | None = None
        self._sources: dict[RunSpec, list[RunSpec]] = {}  # training spec -> the trainings its group may use
        self._closing = False
        self._network_lock = threading.Lock()
        self._networks: dict[str, str] = {}  # engine URL -> this session's internal diagnosis network
        self._network_clients: dict[str, docker.DockerClient] = {}
        self.clock0 = time.monotonic()
        from .engines import EnginePool

        self.pool = EnginePool.connect(settings.engines, cl, settings.transfer)

    def info(self, image: str) -> ImageInfo:
        with self._info_lock:
            if image not in self.infos:
                with ThreadPoolExecutor(INSPECT_FETCHES, thread_name_prefix="ymir-inspect") as fetches:
                    self.infos[image] = inspect_image(self.cl, image, self.settings.limits, fetches)
            return self.infos[image]

    def inspect_all(self, images: Iterable[str]) -> list[ImageInfo]:
        """Inspect every image at once (each image's /img-man `cat`s concurrently too, at most
        :data:`INSPECT_FETCHES` engine calls in flight); raises the first image's error in ``images`` order."""
        todo = list(dict.fromkeys(images))
        with self._info_lock:
            new = [i for i in todo if i not in self.infos]
            if new:
                with ThreadPoolExecutor(INSPECT_FETCHES, thread_name_prefix="ymir-inspect") as fetches, \
                        ThreadPoolExecutor(len(new), thread_name_prefix="ymir-image") as per_image:
                    found = list(per_image.map(
                        lambda img: inspect_image(self.cl, img, self.settings.limits, fetches), new))
                self.infos.update(zip(new, found))
        return [self.infos[i] for i in todo]

    def cleanup(self) -> str | None:
        """Stop scheduling and remove this session's workspace (unless --ymir-keep). Returns None, or what could not
        be removed and why: a note for the user (terminal and report.json), never an exception and never a
        verdict. The owner file goes last, so a later session can still reap whatever is left."""
        self.close()
        self.remove_networks()
        if self.settings.keep:
            return None
        from .owner import OWNER_FILE

        return remove_tree(self.workdir, last=OWNER_FILE)


__all__ = ["Conductor"]
