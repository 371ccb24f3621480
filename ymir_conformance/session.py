"""The task matrix and its execution: which container runs an image gets, run once each, shared by many checks.

A :class:`RunSpec` names one container run (image, object type, task kind, export format, input family).
:class:`Conductor` runs each spec at most once per session, trains once per (image, format, family) and reuses
the model package for every downstream task, and executes the diagnosis policy of :mod:`ymir_conformance.diagnosis`
on a failed run (``--ymir-diagnose``): by default one retry, only when the log shows evidence (a permission error:
as root, LC-09; an empty gpu_id parsed as a number: gpu_id '0' and still no GPU, LC-07), each under the first
run's containment. A root retry that works is the judged run; a gpu_id or network retry that works leaves the
failed run judged (the platform fails the task, V1) with the diagnosis recorded.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from . import audit, datasets, diagnosis, guard, hyper
from .datasets.formats import DEFAULT_EXPORT_FORMAT, canonical_format, parse_export_format, writer_for
from .contracts._values import as_int
from .errors import UnsafeOutput
from .image import ImageInfo, inspect_image
from .model import (INFER, MINING, MINING_INFER, TRAINING, ObjectType, RunOutcome, Task, TaskShape)
from .options import Settings
from .platform import Release, describe
from .runner import (LABEL_PREFIX, LABEL_SESSION, LOG_CAP_BYTES, ContainerSpec, new_name, result_files, run_container,
                     run_labels, shm_size_for)
from .rmtree import remove_tree, remove_tree_or_raise
from .workspace import (DATA_VERSION, DatasetSpec, ModelPackage, Workspace, build_mining_infer, build_training,
                        load_package, package_model,
                        own_tree, prepare_out, tree_digest)

KIND_SHAPES: dict[str, TaskShape] = {
    "training": TRAINING, "retraining": TRAINING, "infer": INFER, "infer-nonbest": INFER,
    "single-image-infer": INFER, "mining": MINING, "mining+infer": MINING_INFER,
}
# Negative inputs (issue: the image must cope or fail cleanly): variant -> (rule, what is odd, dataset change)
NEGATIVE_INPUTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "config-strings": ("IN-10", "every template value comes back from the web UI as a string ('3', 'False')",
                       {"string_values": True}),
    "no-template-keys": ("IN-10", "the user cleared every optional template key", {}),
    "empty-val": ("IN-07", "the validation split is empty", {"empty_val": True}),
    "corrupt-image": ("IN-07", "one training image is truncated (unreadable)", {"corrupt_train_image": True}),
    "absent-class": ("IN-03", "class_names holds a class with no examples in the data",
                     {"extra_class_names": ("zebra",)}),
}
for _variant in NEGATIVE_INPUTS:
    KIND_SHAPES[f"negative-{_variant}"] = TRAINING
KIND_TASKS: dict[str, tuple[Task, ...]] = {k: tuple(s.tasks) for k, s in KIND_SHAPES.items()}
TIMEOUT_FACTOR = 1.5  # the runner stops a container at 1.5x its total budget (BUD-01, MUST); over 1x: BUD-04
INSPECT_FETCHES = min(8, 4 * (os.cpu_count() or 1))  # /img-man reads and `cat`s in flight at once (all images)


def input_family(release: Release) -> tuple[Any, ...]:
    """Releases whose /in is identical for the same inputs share container runs."""
    return (release.protocol_version, release.has_manifest_file, release.config_has_object_type,
            release.per_stage_models)


def families(releases: tuple[Release, ...]) -> dict[Release, tuple[Release, ...]]:
    """representative (newest) release -> the selected releases with the same inputs."""
    groups: dict[tuple[Any, ...], list[Release]] = {}
    for r in releases:
        groups.setdefault(input_family(r), []).append(r)
    return {max(g): tuple(sorted(g)) for g in groups.values()}


def supports(release: Release, object_type: ObjectType) -> bool:
    """Whether a platform release can train and infer this object type at all (segmentation models: 2.1+,
    multi-modal: 2.5)."""
    if object_type is ObjectType.MULTI_MODAL:
        return release >= Release(2, 5)
    if object_type.is_segmentation:
        return release >= Release(2, 1)
    return True


@dataclass(frozen=True)
class RunSpec:
    image: str
    object_type: ObjectType
    kind: str
    export_format: str  # the training format (downstream: of the model used)
    release: Release  # the representative release of the input family (the newest)
    judged_on: tuple[Release, ...] = ()  # every selected release with the same inputs: judged from this one run
    multi_type: bool = False  # prefix ids with the object type
    multi_image: bool = False
    multi_family: bool = False
    export_value: str = ""  # config.yaml export_format when it is the template's own spelling (e.g. 'voc:raw')

    @property
    def shape(self) -> TaskShape:
        return KIND_SHAPES[self.kind]

    @property
    def id(self) -> str:
        parts = []
        if self.multi_image:
            parts.append(self.image.rsplit("/", 1)[-1].replace(":", "-"))
        if self.multi_type:
            parts.append(self.object_type.short)
        parts.append(self.export_format if self.kind == "training" else f"{self.kind}-{self.export_format}")
        ident = "-".join(parts)
        return f"{ident}@{self.release}" if self.multi_family else ident

    def training_spec(self) -> RunSpec:
        return RunSpec(self.image, self.object_type, "training", self.export_format, self.release,
                       self.judged_on, self.multi_type, self.multi_image, self.multi_family, self.export_value)

    @property
    def export_format_value(self) -> str:
        """What config.yaml export_format says in the training run."""
        return self.export_value or f"{self.export_format}:raw"


@dataclass
class RunRecord:
    spec: RunSpec
    outcome: RunOutcome | None
    workspace: Workspace | None
    model: ModelPackage | None = None  # training runs: the packed model
    skipped: str = ""  # why no run happened (no template, training failed, ...)
    error: str = ""  # ymir-conformance itself failed to run or pack this spec (a bug to report, not a verdict)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    # the diagnosis (diagnosis.py): the retries that ran, each with its reason, and the decision's evidence
    retries: list[dict[str, Any]] = field(default_factory=list)
    diagnose: dict[str, Any] = field(default_factory=dict)
    engine: str = ""  # the URL of the engine its containers ran on (--ymir-engines)
    # downstream runs: the training whose model it used (its id) and, when that is not its own group's training
    # (the declared format's training failed), why
    model_from: str = ""
    model_note: str = ""
    # the scheduler's clock (time.monotonic): ready = its inputs were ready (a training: scheduled; a downstream
    # run: its training done), picked = a job slot took it up, started / finished = its first container was
    # started / its last container ended (diagnosis retries included)
    ready_at: float | None = field(default=None, repr=False)
    picked_at: float | None = field(default=None, repr=False)
    started_at: float | None = field(default=None, repr=False)
    finished_at: float | None = field(default=None, repr=False)

    @property
    def queue_s(self) -> float | None:
        """Seconds from ready to its first container start: waiting for a job slot plus building /in."""
        if self.ready_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.ready_at)

    @property
    def prep_s(self) -> float | None:
        """The part of :attr:`queue_s` spent building its workspace once a job slot took it up."""
        if self.picked_at is None or self.started_at is None:
            return None
        return max(0.0, self.started_at - self.picked_at)

    @property
    def wall_s(self) -> float | None:
        """Seconds from its first container start to its last container's end (diagnosis retries included)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


def is_group_root(spec: RunSpec) -> bool:
    """Runs whose inputs are ready from the start: the training of a group and the negative-input trainings.
    Every other run needs the group's trained model (:meth:`RunSpec.training_spec`)."""
    return spec.kind == "training" or spec.kind.startswith("negative-")


def training_formats(info: ImageInfo, ot: ObjectType, settings: Settings, releases: tuple[Release, ...]) -> list[str]:
    valid: list[str] = []
    for r in releases:
        for f in datasets.formats_for(ot, r):
            if f not in valid:
                valid.append(f)
    if settings.formats:
        return [f for f in settings.formats if f in valid] or list(settings.formats)
    if settings.profile == "quick":
        declared = declared_format(info, ot, releases)
        if not valid:
            return []
        if declared not in valid:
            return [valid[0]]
        # releases of the family that do not offer the template's format train on the first one they offer
        rest = [r for r in releases if declared not in datasets.formats_for(ot, r)]
        fallback = next((f for f in valid if any(f in datasets.formats_for(ot, r) for r in rest)), None)
        return [declared] + ([fallback] if fallback is not None and fallback != declared else [])
    # standard/certify: every format the releases offer, the template's first (downstream runs use its model)
    declared = declared_format(info, ot, releases)
    return ([declared] if declared in valid else []) + [f for f in valid if f != declared]


def off_declared_releases(info: ImageInfo, ot: ObjectType, fmt: str, judged_on: tuple[Release, ...],
                          settings: Settings) -> tuple[Release, ...]:
    """The releases on which a training on ``fmt`` is off the image's declared format: 2.0+ (1.1 always exports
    ARK), where the training template's export_format names another format the release offers. There the platform
    trains on ``fmt`` only when a user edits export_format in the form, so the run's MUST findings count as SHOULD
    (contracts.base.evaluate). The platform has no other way for an image to declare formats (the manifest holds
    object_type and enable_livecode only; contract §2), so the template's value is the declaration; formats asked
    for with ``--ymir-formats`` are the certifier's own declaration and are judged in full."""
    if fmt in settings.formats:
        return ()
    out: list[Release] = []
    for r in judged_on:
        if r < Release(2, 0):
            continue
        declared = declared_format(info, ot, (r,))
        if declared is not None and declared != fmt:
            out.append(r)
    return tuple(out)


def template_export_format(info: ImageInfo, ot: ObjectType) -> tuple[str, bool]:
    """(the training template's export_format as the platform gets it, whether the template sets it): the web
    UI drops a training key whose value is '', and 2.x read a missing value as voc:raw (contract §4, IM-04)."""
    raw = (info.template(ot, Task.TRAINING) or {}).get("export_format")
    if raw is None or raw == "":
        return DEFAULT_EXPORT_FORMAT, False
    return str(raw), True


def declared_format(info: ImageInfo, ot: ObjectType, releases: tuple[Release, ...]) -> str | None:
    """The suite's name (:func:`datasets.formats_for`) of the format the training template's export_format gives
    on the newest of ``releases`` that offers it: ``voc:raw`` and ``det-voc:raw`` -> det-voc; None when no
    release offers it (1.1 ignores export_format; a name the release dropped or does not know)."""
    value, _ = template_export_format(info, ot)
    for r in sorted(releases, reverse=True):
        try:
            parse_export_format(value, r)
        except ValueError:
            continue  # e.g. 'voc' or 'voc:lmdb': the platform fails the task (format_notes says so)
        name = canonical_format(value, ot, r)
        if name is not None:
            return name
    return None


def _export_value(info: ImageInfo, ot: ObjectType, fmt: str, release: Release) -> str:
    """config.yaml export_format for a training on ``fmt``: the template's own spelling when it names ``fmt``
    (the platform passes the user's value through), else '' (``<fmt>:raw``)."""
    value, given = template_export_format(info, ot)
    if not given or canonical_format(value, ot, release) != fmt:
        return ""
    try:
        parse_export_format(value, release)
    except ValueError:
        return ""
    return value


def format_notes(info: ImageInfo, releases: tuple[Release, ...], settings: Settings | None = None) -> list[str]:
    """What the author should know about the training template's export_format on the selected releases: a
    name the release does not offer (no annotations), a value the platform fails on, or a format that is not one
    of the object type's (contract §4). No rule of the contract covers the template value itself, so these are
    notes for the header and the report, not findings; the suite trains on a format the release offers."""
    notes: list[str] = []
    for ot in info.object_types:
        if info.template(ot, Task.TRAINING) is None:
            continue
        value, given = template_export_format(info, ot)
        problems: dict[str, list[Release]] = {}
        for r in releases:
            if r < Release(2, 0) or not supports(r, ot):
                continue  # 1.0/1.1 ignore export_format (always ARK)
            offered = ", ".join(datasets.formats_for(ot, r))
            try:
                anno, _ = parse_export_format(value, r)
            except ValueError as exc:
                problems.setdefault(str(exc), []).append(r)
                continue
            if anno is None and value.split(":", 1)[0].lower() == "none":
                why = f"'none' exports no annotations, so training has nothing to learn from; offered: {offered}"
            elif anno is None:
                why = (f"{value.split(':', 1)[0]!r} is not an annotation format this release offers, so the "
                       "platform exports no annotations (empty train/val index files) and training has nothing "
                       f"to learn from; offered: {offered}")
            elif canonical_format(value, ot, r) is None:
                why = (f"it exports {writer_for(anno)} annotations, not a {ot.name.lower()} format of this release; "
                       f"offered: {offered}")
            else:
                continue
            problems.setdefault(why, []).append(r)
        where = f"/img-man/{ot.dir_name + '/' if len(info.object_types) > 1 else ''}training-template.yaml"
        said = f"export_format {value!r}" if given else f"no export_format (the platform uses {value!r})"
        for why, rs in problems.items():
            fallback = training_formats(info, ot, Settings(), (max(rs),))
            notes.append(f"{info.image} ({ot.name.lower()}): {where} has {said}; on platform {describe(rs)} {why}. "
                         f"The suite trains with {', '.join(fallback) or 'nothing'} there instead: set "
                         "export_format to a format every targeted release offers (contract §4).")
        if settings is None:
            continue
        others: dict[str, list[Release]] = {}
        for members in families(settings.releases).values():
            members = tuple(r for r in members if supports(r, ot))
            for fmt in training_formats(info, ot, settings, members) if members else []:
                for r in off_declared_releases(info, ot, fmt, members, settings):
                    if fmt in datasets.formats_for(ot, r):
                        others.setdefault(fmt, []).append(r)
        if others:
            declared = {declared_format(info, ot, (r,)) for rs in others.values() for r in rs}
            notes.append(f"{info.image} ({ot.name.lower()}): {where} declares export_format {value!r} "
                         f"({', '.join(sorted(d for d in declared if d))}); the {settings.profile} profile also "
                         f"trains on {', '.join(others)} (what a user gets who switches export_format in the "
                         "form) and judges those runs at SHOULD; downstream runs use the declared format's model. "
                         "--ymir-formats judges the formats it names in full.")
    return notes


def plan(infos: list[ImageInfo], settings: Settings) -> list[RunSpec]:
    """The task matrix for every image, driven by the templates each image declares."""
    fams = families(settings.releases)
    specs: list[RunSpec] = []
    for info in infos:
        multi_type = len(info.object_types) > 1
        for ot in info.object_types:
            for members in fams.values():
                members = tuple(r for r in members if supports(r, ot))
                if not members:
                    continue  # e.g. segmentation before 2.1: the release cannot run this object type at all
                fmts = training_formats(info, ot, settings, members)
                for fmt in fmts:
                    accepting = tuple(r for r in members if fmt in datasets.formats_for(ot, r))
                    # downstream tasks run on the model of the first format each release offers
                    first = tuple(r for r in accepting
                                  if next((f for f in fmts if f in datasets.formats_for(ot, r)), None) == fmt)
                    primary = bool(first)
                    if settings.profile == "quick" and not settings.formats:
                        accepting = first  # one format per release: the template's, else the fallback
                    if not accepting:
                        continue  # run each format at the newest release of the family that offers it
                    kinds = [k for k in settings.tasks if k != "negative"]
                    if "negative" in settings.tasks:
                        kinds += [f"negative-{v}" for v in NEGATIVE_INPUTS]
                    for kind in kinds:
                        if kind not in KIND_SHAPES:
                            continue
                        if kind != "training" and not primary:
                            continue  # downstream tasks run on the model of the first format only
                        specs.append(RunSpec(info.image, ot, kind, fmt, max(accepting), accepting, multi_type,
                                             len(infos) > 1, len(fams) > 1,
                                             _export_value(info, ot, fmt, max(accepting))))
    return specs


class Conductor:
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

    def transfer_for(self, engine: Any, image: str) -> str:
        """bind or archive for ``engine`` (probed once per engine; raises transfer.TransferError when bind is
        forced on an engine that cannot see the workdir)."""
        from .runner import inspect_labels

        return self.pool.resolve(engine, image, self.workdir, self.settings.limits.create_kwargs(), inspect_labels())

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

    def dataset(self) -> DatasetSpec:
        sizes = datasets.PROFILES[self.settings.profile]
        train, val, candidates = sizes.train, sizes.val, sizes.candidates
        if self.settings.dataset_size is not None:  # --ymir-dataset-size
            train, val, candidates = self.settings.dataset_size.apply(train, val, candidates)
        return DatasetSpec(seed=self.settings.seed, train=train, val=val, candidates=candidates, test=sizes.test,
                           edge_cases=self.settings.profile == "certify")

    def _space(self, spec: RunSpec) -> Path:
        info = self.info(spec.image)
        return self.workdir / info.short_id / spec.id.replace("+", "_").replace("@", "_at_")

    # -- running: a scheduler of futures ------------------------------------------------------------------------
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
        s = self.settings
        try:
            ws = build()
            record = RunRecord(spec, None, ws)
            record.outcome = self._run_once(spec, ws, ws.out_dir, s.user, s.allow_network, record,
                                            ws.tensorboard_host)
            if s.allow_network:
                record.outcome.network_name = "bridge"
            base = self.records.get(spec.training_spec())
            if not spec.shape.run_training and base is not None:
                record.outcome.model_object_type = self._registered_object_type(base)
        except Exception as exc:  # a defect of ymir-conformance: the caller reports it
            record = RunRecord(spec, None, None, error=f"{type(exc).__name__}: {exc}"[:2000])
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

    def _execute(self, spec: RunSpec) -> RunRecord:
        info = self.info(spec.image)
        missing = [t for t in KIND_TASKS[spec.kind] if info.template(spec.object_type, t) is None]
        if missing:
            return RunRecord(spec, None, None, skipped=f"the image declares no {missing[0].value} template for "
                             f"{spec.object_type.name.lower()} (/img-man), so it does not support {spec.kind}")
        cached = self._cached_model(spec)
        if cached is not None:
            return cached
        root = self._space(spec)
        data = self.dataset()
        base, note = RunRecord(spec, None, None), ""  # downstream runs: the training whose model they use
        if spec.shape.run_training:  # training, retraining, and training on negative inputs
            template = info.template(spec.object_type, Task.TRAINING) or {}
            pretrained = None
            if spec.kind.startswith("negative-"):
                _, _, change = NEGATIVE_INPUTS[spec.kind.removeprefix("negative-")]
                data = DatasetSpec(**{**data.__dict__, **change})
                if spec.kind == "negative-no-template-keys":
                    template = {}
            elif spec.kind == "retraining":
                base, note = self._model_record(spec)
                if base.model is None:
                    return RunRecord(spec, None, None, skipped=f"no model to retrain from: {base.skipped or 'training failed'}")
                pretrained = (base.model, base.model.best_stage)
            ws = build_training(root, template=template, object_type=spec.object_type,
                                export_format=spec.export_format_value, data=data, release=spec.release,
                                gpu_ids=self.settings.gpu_ids, pretrained=pretrained, label=spec.id,
                                hyper=self.settings.hyper_params)
        else:
            base, note = self._model_record(spec)
            if base.model is None:
                why = base.skipped or "the training run produced no usable model package (see the training tests)"
                return RunRecord(spec, None, None, skipped=f"cannot run {spec.kind}: {why}")
            stage = base.model.best_stage
            if spec.kind == "infer-nonbest":
                other = base.model.non_best_stage()
                if other is None:
                    return RunRecord(spec, None, None, skipped="the model declares no non-best stage (it has a single stage)")
                stage = other
            if spec.kind == "single-image-infer":
                data = DatasetSpec(**{**data.__dict__, "flat_candidate_names": True})
            templates = {t: info.template(spec.object_type, t) or {} for t in Task}
            ws = build_mining_infer(root, shape=spec.shape, templates=templates, object_type=spec.object_type,
                                    model=base.model, stage=stage, data=data, release=spec.release,
                                    gpu_ids=self.settings.gpu_ids, label=spec.id, hyper=self.settings.hyper_params)
        record = RunRecord(spec, None, ws)
        if spec.kind == "retraining" or not spec.shape.run_training:
            record.model_from, record.model_note = base.spec.id, note
        judged_on = spec.judged_on or (spec.release,)
        off = off_declared_releases(info, spec.object_type, spec.export_format, judged_on, self.settings) \
            if spec.kind == "training" else ()
        if off and set(off) == set(judged_on):
            # a format the image does not declare, judged at SHOULD wherever it runs: its failure is explained
            # (the image does not read it), so no diagnosis retry (root, network, gpu_id) is spent on it
            s = self.settings
            record.outcome = self._run_once(spec, ws, ws.out_dir, s.user, s.allow_network, record,
                                            ws.tensorboard_host)
        else:
            record.outcome = self._run_diagnosed(spec, ws, record)
        record.outcome.off_declared_on, record.outcome.off_declared_format = off, spec.export_format_value
        if not spec.shape.run_training:
            record.outcome.model_object_type = self._registered_object_type(base)
        if spec.kind in ("training", "retraining") and record.outcome.succeeded:
            record.model = package_model(record.outcome.out_dir, root.parent / "models" / spec.id, ws.config, spec.object_type)
            if spec.kind == "training" and record.model is not None:
                self._cache_model(spec, record.model)
        return record

    def _model_record(self, spec: RunSpec) -> tuple[RunRecord, str]:
        """The training record whose model the downstream run ``spec`` uses, and a note when it is not its own
        group's: when the declared format's training produced no model, the first training of another format
        that did (the scheduler submits ``spec`` only once that is known, so nothing here waits on a run)."""
        sources = self.model_sources(spec.training_spec())
        own = self.get(sources[0])
        if own.model is not None:
            return own, ""
        for alt in sources[1:]:
            rec = self.records.get(alt)
            if rec is not None and rec.model is not None:
                why = own.skipped or ("it failed" if own.outcome is not None and not own.outcome.succeeded
                                      else "it produced no usable model package")
                return rec, (f"the {own.spec.export_format} training (the export format the training template "
                             f"declares) gave no model ({why}); this run uses the model of training {alt.id} "
                             "instead")
        return own, ""

    def _registered_object_type(self, base: RunRecord) -> int | None:
        """The object type ymir 2.1-2.3 register the model of training ``base`` with: its result.yaml object_type,
        2 when absent (TR-12); None when the training did not run in this session."""
        if base.outcome is None:
            return None
        try:
            res = guard.load_yaml(guard.read_text(base.outcome.out_dir, "models/result.yaml", guard.CAPS["result-yaml"]))
        except (OSError, UnsafeOutput, yaml.YAMLError):
            return None
        if not isinstance(res, dict):
            return None
        raw = res.get("object_type", 2)
        return None if isinstance(raw, bool) else as_int(raw)

    # -- the trained-model cache: reused by a later session that runs downstream tasks only ---------------------
    def _cache_key(self, spec: RunSpec) -> Path:
        info = self.info(spec.image)
        s = self.settings
        # a model trained with other hyper-parameters or dataset sizes is another model; edits that reach only
        # the mining/infer templates do not change it
        edits = hyper.reaching(s.hyper_params, Task.TRAINING)
        tuned = "" if not (edits or s.dataset_size) else "-h" + hashlib.sha1(
            f"{[str(p) for p in edits]}|{s.dataset_size}".encode()).hexdigest()[:10]
        return (self.cache_dir / f"{info.image_id.removeprefix('sha256:')[:16]}-seed{self.settings.seed}-"
                f"{self.settings.profile}-{spec.object_type.short}-{spec.export_format}-{spec.release}-d{DATA_VERSION}"
                f"{tuned}")

    def _cache_model(self, spec: RunSpec, pkg: ModelPackage) -> None:
        dest = self._cache_key(spec)
        with self._cache_lock:
            remove_tree_or_raise(dest)
            shutil.copytree(pkg.root, dest, copy_function=guard.clone_file)  # sparse-aware: holes stay holes

    def _cached_model(self, spec: RunSpec) -> RunRecord | None:
        """When training is not among the requested tasks, reuse a model trained by an earlier session."""
        if spec.kind != "training" or "training" in self.settings.tasks:
            return None
        with self._cache_lock:
            pkg = load_package(self._cache_key(spec))
        if pkg is None:
            return None
        return RunRecord(spec, None, None, model=pkg,
                         skipped=f"training was not requested; reused the model cached at {pkg.root}")

    def _run_diagnosed(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> RunOutcome:
        """Run ``spec`` once and execute the diagnosis policy (:mod:`ymir_conformance.diagnosis`) on a failure:
        the retries it decides, each under exactly the first run's containment. A retry as root that works is the
        judged run (LC-09); a gpu_id '0' retry (LC-07) or a network retry (``all``: an internal network, LC-10)
        that works leaves the failed run judged (the platform fails the task, V1)."""
        s = self.settings
        first = self._run_once(spec, ws, ws.out_dir, s.user, s.allow_network, record, ws.tensorboard_host)
        if s.allow_network:
            first.network_name = "bridge"  # --ymir-allow-network: the judged run had the default bridge
        if first.succeeded or self._closing:
            return first  # a session that is stopping (its containers killed or reaped) starts no retry
        decision = diagnosis.decide(
            s.diagnose, exit_code=first.exit_code, timed_out=first.timed_out, hit_limit=first.hit_limit,
            duration_s=first.duration_s, log_lines=guard.tail_lines(first.out_dir, "ymir-executor-out.log",
                                                                    diagnosis.SCAN_LINES, guard.CAPS["log-scan"]),
            user_is_root=s.user == "0:0", cpu_mode=not s.gpu_ids, had_network=s.allow_network,
            clean_no_gpu=_failed_with_no_gpu(first))
        record.diagnose = {"mode": s.diagnose, "not_retried": decision.not_retried,
                           "evidence": [{"cause": str(ev.cause), "rule": ev.cause.rule, "line": ev.line,
                                         "subject": ev.subject} for ev in decision.evidence[-8:]]}
        if decision.network is not None and s.diagnose != "all":
            first.diagnosis.append(f"not retried with a network: the log shows {diagnosis.describe(decision.network)} "
                                   "(LC-10)")
        elif decision.not_retried and decision.evidence and s.diagnose == "auto":
            first.diagnosis.append(f"not retried: {decision.not_retried}")
        for retry in decision.retries:
            if self._closing:
                break
            if retry.kind is diagnosis.RetryKind.ROOT:
                out = self._retry(spec, ws, record, retry, user="0:0")
                if out.succeeded:
                    out.retried_as_root = True
                    out.diagnosis.append(f"retried as root: {retry.reason}; failed as --user {s.user} (exit "
                                         f"{first.exit_code}), succeeded as root")
                    return out
            elif retry.kind is diagnosis.RetryKind.NETWORK:
                try:
                    network = self._internal_network(spec)
                except docker.errors.APIError as exc:  # e.g. the engine's address pools are used up
                    first.diagnosis.append(f"not retried on an internal network: the engine refused to create one "
                                           f"({diagnosis.printable(str(exc), 200)})")
                    continue
                out = self._retry(spec, ws, record, retry, network_name=network)
                if out.succeeded:  # never the judged run: the failed one stays (V1), LC-10 names the cause
                    first.needs_network = True
                    first.diagnosis.append(f"retried on an internal network (no route anywhere): {retry.reason}; "
                                           f"failed with --network none (exit {first.exit_code}), succeeded with a "
                                           "network: the judged run is the failed one")
                    return first
            elif self._works_with_gpu_id(spec, ws, record, retry):
                # the platform fails the task in CPU mode: the failed run stays the judged one (V1), diagnosed LC-07
                first.needs_gpu_id = True
                first.diagnosis.append(f"retried with gpu_id '0': {retry.reason}; failed in CPU mode with gpu_id "
                                       f"'' (exit {first.exit_code}), succeeded when rerun with gpu_id '0' in "
                                       "config.yaml and still no GPU: the image does not treat an empty gpu_id as "
                                       "CPU mode")
                return first
        ran = [r for r in record.retries if not r.get("succeeded")]
        if ran:
            first.diagnosis.append("retried " + ", ".join(f"{r['kind']} (exit {r['exit_code']})" for r in ran)
                                   + ": no retry worked, the first run is judged")
        return first  # nothing explains the failure: judge the run as the platform would have made it

    def _retry_out(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> tuple[Path, Path | None]:
        """A fresh /out (and TensorBoard folder) for the next retry, as the platform would prepare it."""
        diag_out = ws.root / f"out-retry-{len(record.attempts)}"
        remove_tree_or_raise(diag_out)
        tensorboard = ws.retry_tensorboard(len(record.attempts))
        prepare_out(diag_out, ws.task_id, tensorboard, chmod=spec.release >= Release(2, 0),
                    model_dirs=spec.release >= Release(2, 0) or spec.shape.run_training)
        return diag_out, tensorboard

    def _retry(self, spec: RunSpec, ws: Workspace, record: RunRecord, retry: diagnosis.Retry, user: str | None = None,
               network_name: str = "") -> RunOutcome:
        """One retry with the first run's settings except ``user`` or the network; recorded in ``record.retries``."""
        s = self.settings
        diag_out, tensorboard = self._retry_out(spec, ws, record)
        out = self._run_once(spec, ws, diag_out, user or s.user, bool(network_name) or s.allow_network, record,
                             tensorboard, network_name=network_name)
        out.network_name = network_name or ("bridge" if s.allow_network else "")
        self._note_retry(record, retry, out)
        return out

    @staticmethod
    def _note_retry(record: RunRecord, retry: diagnosis.Retry, out: RunOutcome) -> None:
        record.retries.append({"kind": str(retry.kind), "rule": retry.rule, "reason": retry.reason,
                               "exit_code": out.exit_code, "succeeded": out.succeeded,
                               "duration_s": round(out.duration_s, 3), "container": out.container_name,
                               **({"network": out.network_name} if out.network_name else {})})

    def _works_with_gpu_id(self, spec: RunSpec, ws: Workspace, record: RunRecord, retry: diagnosis.Retry) -> bool:
        """Rerun a failed CPU-mode run with config.yaml gpu_id '0' (no device request: still CPU) and say whether
        it succeeds. /in/config.yaml is rewritten for the rerun only and restored byte for byte afterwards."""
        s = self.settings
        config = ws.in_dir / "config.yaml"
        try:
            original = config.read_bytes()
            cfg = yaml.safe_load(original)
        except (OSError, yaml.YAMLError):
            return False
        if not isinstance(cfg, dict):
            return False
        diag_out, tensorboard = self._retry_out(spec, ws, record)
        try:
            config.write_text(yaml.safe_dump({**cfg, "gpu_id": "0"}, allow_unicode=True, sort_keys=True))
            out = self._run_once(spec, ws, diag_out, s.user, s.allow_network, record, tensorboard)
        finally:
            config.write_bytes(original)
        record.attempts[-1]["gpu_id"] = "0"
        self._note_retry(record, retry, out)
        return out.succeeded

    # -- the diagnosis network (--ymir-diagnose=all): internal, no address on the host, one per engine ----------
    def _internal_network(self, spec: RunSpec) -> str:
        """The name of this session's internal Docker network on ``spec``'s engine, created on first use:
        ``--internal`` (no route out) and no IPv4 address on the host's bridge (``inhibit_ipv4``), so a container
        on it reaches neither the Internet nor the host nor the default bridge. Removed by :meth:`cleanup`."""
        with self._lock:
            engine = self.pool.for_group(spec.training_spec())
        with self._network_lock:
            name = self._networks.get(engine.url)
            if name is not None:
                return name
            _reap_stale_networks(engine.cl)
            name = f"ymir-diag-{self.session_id[:24]}-{uuid.uuid4().hex[:8]}"  # xdist workers share the session id
            engine.cl.networks.create(name, driver="bridge", internal=True, check_duplicate=True,
                                      options={"com.docker.network.bridge.inhibit_ipv4": "true"},
                                      labels={**run_labels(self.session_id, "diagnosis-network"),
                                              LABEL_NETWORK: "1"})
            self._networks[engine.url] = name
            self._network_clients[engine.url] = engine.cl
            return name

    def remove_networks(self) -> None:
        """Remove the networks :meth:`_internal_network` created (a network a kept container still uses stays)."""
        with self._network_lock:
            for url, name in list(self._networks.items()):
                try:
                    self._network_clients[url].networks.get(name).remove()
                except Exception:  # gone already, in use by a kept container, or the engine went away
                    continue
                del self._networks[url]

    def _run_once(self, spec: RunSpec, ws: Workspace, out_dir: Path, user: str, network: bool,
                  record: RunRecord, tensorboard: Path | None, network_name: str = "") -> RunOutcome:
        s = self.settings
        # the platform mounts each link target in /in and /out read-write at its own host path
        mounts = tuple((p.resolve(), str(p.resolve()), "rw") for p in (ws.asset_cache, tensorboard) if p is not None)
        with self._lock:
            engine = self.pool.for_group(spec.training_spec())  # every run of a training group on one engine
        transfer = self.transfer_for(engine, spec.image)
        record.engine = engine.url
        cspec = ContainerSpec(
            image=spec.image, in_dir=ws.in_dir, out_dir=out_dir, user=user, gpu_ids=s.gpu_ids,
            shm_size=shm_size_for(ws.config, s.gpu_ids), network=network, network_name=network_name,
            name=new_name(spec.id),
            labels=run_labels(self.session_id, spec.id), limits=s.limits, extra_mounts=mounts, transfer=transfer,
        )
        if spec.release < Release(2, 0) and user != "0:0":
            own_tree(out_dir, user)  # 1.1 does no chmod -R 777: /out belongs to the uid it runs containers as
        if ws.asset_cache is not None and user != "0:0":
            own_tree(ws.asset_cache, user)  # the platform's uid made the cache and is the container's --user
        digest_before = tree_digest(ws.in_dir)
        cache_before = tree_digest(ws.asset_cache) if ws.asset_cache is not None else ""
        watch = audit.watch_inputs(ws.in_dir, ws.asset_cache)  # what the image opens under /in (IN-11..13, LC-04)
        if record.started_at is None:
            record.started_at = time.monotonic()
        from .report.live import BOARD  # the live status lines (report/live.py)

        try:
            with BOARD.run(cspec.name, spec.id + (f" (retry {len(record.attempts)})" if record.attempts else ""),
                           s.budget.total_s):
                result = run_container(engine.cl, cspec, timeout_s=s.budget.total_s * TIMEOUT_FACTOR, keep=s.keep,
                                       done_files=result_files(spec.shape), exit_grace_s=s.exit_grace_s)
        finally:
            record.finished_at = time.monotonic()
            inputs_opened = audit.finish(watch, ws.in_dir, ws.asset_cache, spec.shape)
        cache_after = tree_digest(ws.asset_cache) if ws.asset_cache is not None else ""
        if transfer == "archive":  # the host cannot watch what the engine's container opens
            inputs_opened = {"audited": False, "complete": False, "problem": "/in was shipped to the engine "
                             "(--ymir-transfer=archive): the host cannot watch what the container opens"}
            digests = result.transfer.get("asset_cache_digests")
            if digests and digests[0] != digests[1]:  # the image changed the asset cache volume
                cache_after = f"engine:{digests[1]}"
        with self._lock:
            self.container_runs += 1
        record.attempts.append({"user": user, "network": network_name or network, "exit_code": result.exit_code,
                                "timed_out": result.timed_out, "duration_s": round(result.duration_s, 3),
                                "container": cspec.name, "engine": engine.url, "transfer": transfer,
                                "oom_killed": result.oom_killed,
                                "hit_pids_limit": result.hit_pids_limit, "never_exited": result.never_exited,
                                **({"archive": result.transfer} if result.transfer else {})})
        return RunOutcome(
            image=spec.image, shape=spec.shape, object_type=spec.object_type, in_dir=ws.in_dir, out_dir=out_dir,
            exit_code=result.exit_code, timed_out=result.timed_out, duration_s=result.duration_s, user=user,
            gpu_ids=s.gpu_ids, network=network, export_format=ws.export_format, label=spec.id,
            progress=result.progress, argv=cspec.argv(), container_name=cspec.name,
            in_dir_digest_before=digest_before, in_dir_digest_after=tree_digest(ws.in_dir),
            budget_total_s=s.budget.total_s, budget_first_progress_s=s.budget.first_progress_s,
            budget_heartbeat_s=s.budget.heartbeat_s,
            limits={} if cspec.limits.off else cspec.limits.to_json(), oom_killed=result.oom_killed,
            hit_pids_limit=result.hit_pids_limit, pids_peak=result.pids_peak, flood_stopped=result.flood_stopped,
            disk_stopped=result.disk_stopped, disk_used_bytes=result.disk_used_bytes,
            memory_peak_bytes=result.memory_peak_bytes, log_bytes=result.log_bytes,
            log_bytes_dropped=result.log_bytes_dropped, log_cap_bytes=LOG_CAP_BYTES,
            never_exited=result.never_exited, done_s=result.done_s, exit_grace_s=s.exit_grace_s,
            worked_after_done_s=result.worked_after_done_s, cpu_usage_s=result.cpu_usage_s,
            cpu_periods=result.cpu_periods, cpu_throttled=result.cpu_throttled,
            asset_cache=ws.asset_cache, tensorboard_dir=tensorboard, asset_cache_digest_before=cache_before,
            asset_cache_digest_after=cache_after,
            inputs_opened=inputs_opened,
        )

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


def _result(future: Future[RunRecord]) -> RunRecord:
    """``future.result()``, waking up often: a SIGINT/SIGTERM the kernel delivers to another thread (a run's) does
    not interrupt the main thread's untimed lock wait, so its KeyboardInterrupt would wait for the run to end."""
    while True:
        try:
            return future.result(timeout=0.2)
        except TimeoutError:
            continue


LABEL_NETWORK = f"{LABEL_PREFIX}.diagnosis-network"


def _reap_stale_networks(cl: docker.DockerClient) -> None:
    """Remove diagnosis networks whose session is certainly gone (a SIGKILLed session could not remove its own:
    each holds one of the engine's few address pools)."""
    from .owner import Owner, Probe, engine_time, gone

    try:
        found = cl.networks.list(filters={"label": LABEL_NETWORK})
    except Exception:
        return
    probe = Probe()
    for net in found:
        labels = dict(net.attrs.get("Labels") or {})
        owner = Owner.from_labels(labels, LABEL_PREFIX, LABEL_SESSION)
        if gone(owner, engine_time(str(net.attrs.get("Created", ""))), probe) is None:
            continue
        try:
            net.remove()
        except Exception:  # in use (a kept container) or gone already
            pass


def _failed_with_no_gpu(o: RunOutcome) -> bool:
    """The run failed cleanly for want of a GPU (monitor state 4 with 300102 RC_EXEC_NO_GPU), as LC-07 allows."""
    try:
        line = guard.read_text(o.out_dir, "monitor.txt", guard.CAPS["monitor"]).split("\n", 1)[0].split("\t")
    except (OSError, UnsafeOutput):
        return False
    return len(line) >= 5 and line[3].strip() == "4" and line[4].strip() == "300102"


def outcome_json(record: RunRecord) -> dict[str, Any]:
    from .excerpt import read_excerpt
    from .progress import timing_summary

    o = record.outcome
    if o is None:
        return {"image": record.spec.image, "id": record.spec.id, "kind": record.spec.kind, "skipped": record.skipped,
                "engine": record.engine}
    model: dict[str, Any] = {"model_from": record.model_from} if record.model_from else {}
    if record.model_note:
        model["model_note"] = record.model_note
    if o.off_declared_on:
        model["off_declared_format"] = {"export_format": o.off_declared_format,
                                        "releases": [str(r) for r in o.off_declared_on]}
    tail = guard.tail_lines(o.out_dir, "ymir-executor-out.log", 20)
    return {
        "image": record.spec.image, "id": record.spec.id, "kind": record.spec.kind, "shape": o.shape.name, "object_type": int(o.object_type),
        "export_format": record.spec.export_format, "inputs_release": str(record.spec.release),
        "exit_code": o.exit_code, "timed_out": o.timed_out, "duration_s": round(o.duration_s, 3),
        "user": o.user, "network": o.network, "gpu_ids": list(o.gpu_ids), "argv": o.argv,
        "diagnosis": o.diagnosis, "attempts": record.attempts, "log_tail": tail,
        "error_excerpt": read_excerpt(o.out_dir).to_json(),  # the real error found anywhere in the log
        "retries": record.retries, "diagnose": record.diagnose, "network_name": o.network_name,
        "needs_network": o.needs_network,
        "limits": o.limits, "oom_killed": o.oom_killed, "hit_pids_limit": o.hit_pids_limit,
        "pids_peak": o.pids_peak, "memory_peak_bytes": o.memory_peak_bytes, "log_bytes": o.log_bytes,
        "log_bytes_dropped": o.log_bytes_dropped, "never_exited": o.never_exited, "done_s": o.done_s,
        "worked_after_done_s": round(o.worked_after_done_s, 1),
        "cpu": {"usage_s": None if o.cpu_usage_s is None else round(o.cpu_usage_s, 3), "periods": o.cpu_periods,
                "throttled": o.cpu_throttled},
        "progress": [{"seen_s": round(p.seen_s, 3), "line": p.raw.split("\n", 1)[0]} for p in o.progress],
        "progress_timing": timing_summary(o.progress, o.duration_s),
        "inputs_opened": o.inputs_opened,
        "engine": record.engine, "transfer": (record.attempts[-1].get("transfer", "bind") if record.attempts
                                              else "bind"),
        **model,
        **_schedule_json(record),
    }


def _schedule_json(record: RunRecord) -> dict[str, Any]:
    """When the scheduler ran it: queue_s (inputs ready -> first container start; prep_s of it building /in) and
    wall_s (first container start -> last container end, diagnosis retries included)."""
    out: dict[str, Any] = {}
    for key, value in (("queue_s", record.queue_s), ("prep_s", record.prep_s), ("wall_s", record.wall_s)):
        if value is not None:
            out[key] = round(value, 3)
    return out


__all__ = ["Conductor", "RunRecord", "RunSpec", "families", "plan"]
