"""The task matrix: which container runs an image gets (:func:`plan`), each run once and shared by many checks.

A :class:`RunSpec` names one container run (image, object type, task kind, export format, input family); a
:class:`RunRecord` is what became of it (:func:`outcome_json`: as report.json keeps it). The runs themselves are
the conductor's (conductor.py: scheduler, execution, model cache, diagnosis retries); ``Conductor`` is still
importable from here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import datasets, guard
from .datasets.formats import DEFAULT_EXPORT_FORMAT, canonical_format, parse_export_format, writer_for
from .image import ImageInfo
from .model import (INFER, MINING, MINING_INFER, TRAINING, ObjectType, RunOutcome, Task, TaskShape)
from .options import Settings
from .platform import Release, describe
from .contracts.lifecycle import HARD_LIMIT_FACTOR
from .workspace import ModelPackage, Workspace

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
TIMEOUT_FACTOR = HARD_LIMIT_FACTOR  # the runner stops a container at 1.5x its total budget (BUD-01, MUST); over 1x: BUD-04
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



def __getattr__(name: str) -> Any:
    """``session.Conductor``: the conductor moved to conductor.py; imported on first use (no import cycle)."""
    if name == "Conductor":
        from .conductor import Conductor

        return Conductor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Conductor", "RunRecord", "RunSpec", "families", "plan"]
