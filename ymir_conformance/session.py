"""The task matrix and its execution: which container runs an image gets, run once each, shared by many checks.

A :class:`RunSpec` names one container run (image, object type, task kind, export format, input family).
:class:`Conductor` runs each spec at most once per session, trains once per (image, format, family) and reuses
the model package for every downstream task, and diagnoses failures the way an image author would: a run that
fails as a non-root user is retried as root (LC-09), one that fails without network is retried with it
(LC-10); the retry that succeeds is the one judged, with the diagnosis recorded.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from . import datasets
from .image import ImageInfo, inspect_image
from .model import (INFER, MINING, MINING_INFER, TRAINING, ObjectType, RunOutcome, Task, TaskShape)
from .options import Settings
from .platform import Release
from .runner import ContainerSpec, new_name, run_container, run_labels, shm_size_for
from .workspace import (DatasetSpec, ModelPackage, Workspace, build_mining_infer, build_training, load_package,
                        package_model,
                        prepare_out, tree_digest)

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
TIMEOUT_FACTOR = 1.5  # the runner kills a container at 1.5x its total budget; BUD-01 fails it at 1x


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
                       self.judged_on, self.multi_type, self.multi_image, self.multi_family)


@dataclass
class RunRecord:
    spec: RunSpec
    outcome: RunOutcome | None
    workspace: Workspace | None
    model: ModelPackage | None = None  # training runs: the packed model
    skipped: str = ""  # why no run happened (no template, training failed, ...)
    attempts: list[dict[str, Any]] = field(default_factory=list)


def training_formats(info: ImageInfo, ot: ObjectType, settings: Settings, releases: tuple[Release, ...]) -> list[str]:
    valid: list[str] = []
    for r in releases:
        for f in datasets.formats_for(ot, r):
            if f not in valid:
                valid.append(f)
    if settings.formats:
        return [f for f in settings.formats if f in valid] or list(settings.formats)
    if settings.profile == "quick":
        tpl = info.template(ot, Task.TRAINING) or {}
        declared = str(tpl.get("export_format") or "").split(":")[0].lower()
        return [declared if declared in valid else valid[0]] if valid else []
    return valid


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
                for fmt in training_formats(info, ot, settings, members):
                    accepting = tuple(r for r in members if fmt in datasets.formats_for(ot, r))
                    if not accepting:
                        continue  # run each format at the newest release of the family that offers it
                    kinds = [k for k in settings.tasks if k != "negative"]
                    if "negative" in settings.tasks:
                        kinds += [f"negative-{v}" for v in NEGATIVE_INPUTS]
                    for kind in kinds:
                        if kind not in KIND_SHAPES:
                            continue
                        if kind != "training" and fmt != training_formats(info, ot, settings, members)[0]:
                            continue  # downstream tasks run on the model of the first format only
                        specs.append(RunSpec(info.image, ot, kind, fmt, max(accepting), accepting, multi_type,
                                             len(infos) > 1, len(fams) > 1))
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

    def info(self, image: str) -> ImageInfo:
        if image not in self.infos:
            self.infos[image] = inspect_image(self.cl, image)
        return self.infos[image]

    def dataset(self) -> DatasetSpec:
        sizes = datasets.PROFILES[self.settings.profile]
        return DatasetSpec(seed=self.settings.seed, train=sizes.train, val=sizes.val, candidates=sizes.candidates,
                           edge_cases=self.settings.profile == "certify")

    def _space(self, spec: RunSpec) -> Path:
        info = self.info(spec.image)
        return self.workdir / info.short_id / spec.id.replace("+", "_").replace("@", "_at_")

    # -- running --------------------------------------------------------------------------------------------
    def get(self, spec: RunSpec) -> RunRecord:
        if spec not in self.records:
            self.records[spec] = self._execute(spec)
        return self.records[spec]

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
        if spec.shape.run_training:  # training, retraining, and training on negative inputs
            template = info.template(spec.object_type, Task.TRAINING) or {}
            pretrained = None
            if spec.kind.startswith("negative-"):
                _, _, change = NEGATIVE_INPUTS[spec.kind.removeprefix("negative-")]
                data = DatasetSpec(**{**data.__dict__, **change})
                if spec.kind == "negative-no-template-keys":
                    template = {}
            elif spec.kind == "retraining":
                base = self.get(spec.training_spec())
                if base.model is None:
                    return RunRecord(spec, None, None, skipped=f"no model to retrain from: {base.skipped or 'training failed'}")
                pretrained = (base.model, base.model.best_stage)
            ws = build_training(root, template=template, object_type=spec.object_type,
                                export_format=f"{spec.export_format}:raw", data=data, release=spec.release,
                                gpu_ids=self.settings.gpu_ids, pretrained=pretrained, label=spec.id)
        else:
            base = self.get(spec.training_spec())
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
                                    gpu_ids=self.settings.gpu_ids, label=spec.id)
        record = RunRecord(spec, None, ws)
        record.outcome = self._run_diagnosed(spec, ws, record)
        if spec.kind in ("training", "retraining") and record.outcome.succeeded:
            record.model = package_model(record.outcome.out_dir, root.parent / "models" / spec.id, ws.config, spec.object_type)
            if spec.kind == "training" and record.model is not None:
                self._cache_model(spec, record.model)
        return record

    # -- the trained-model cache: reused by a later session that runs downstream tasks only ---------------------
    def _cache_key(self, spec: RunSpec) -> Path:
        info = self.info(spec.image)
        return (self.cache_dir / f"{info.image_id.removeprefix('sha256:')[:16]}-seed{self.settings.seed}-"
                f"{self.settings.profile}-{spec.object_type.short}-{spec.export_format}-{spec.release}")

    def _cache_model(self, spec: RunSpec, pkg: ModelPackage) -> None:
        dest = self._cache_key(spec)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(pkg.root, dest)

    def _cached_model(self, spec: RunSpec) -> RunRecord | None:
        """When training is not among the requested tasks, reuse a model trained by an earlier session."""
        if spec.kind != "training" or "training" in self.settings.tasks:
            return None
        pkg = load_package(self._cache_key(spec))
        if pkg is None:
            return None
        return RunRecord(spec, None, None, model=pkg,
                         skipped=f"training was not requested; reused the model cached at {pkg.root}")

    def _run_diagnosed(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> RunOutcome:
        s = self.settings
        first = self._run_once(spec, ws, ws.out_dir, s.user, s.allow_network, record)
        if first.succeeded or first.timed_out or not s.diagnose:
            return first
        retries: list[tuple[str, bool, str]] = []
        if s.user != "0:0":
            retries.append(("0:0", s.allow_network, f"failed as --user {s.user} (exit {first.exit_code}), "
                                                    "succeeded as root"))
        if not s.allow_network:
            retries.append((s.user, True, f"failed with --network none (exit {first.exit_code}), succeeded with "
                                          "the default bridge network"))
        for user, network, note in retries:
            diag_out = ws.root / f"out-retry-{len(record.attempts)}"
            if diag_out.exists():
                shutil.rmtree(diag_out)
            prepare_out(diag_out, ws.task_id)
            retry = self._run_once(spec, ws, diag_out, user, network, record)
            if retry.succeeded:
                retry.retried_as_root = user != s.user
                retry.retried_with_network = network != s.allow_network
                retry.diagnosis.append(note)
                return retry
        return first  # nothing explains the failure: judge the run as the platform would have made it

    def _run_once(self, spec: RunSpec, ws: Workspace, out_dir: Path, user: str, network: bool,
                  record: RunRecord) -> RunOutcome:
        s = self.settings
        cspec = ContainerSpec(
            image=spec.image, in_dir=ws.in_dir, out_dir=out_dir, user=user, gpu_ids=s.gpu_ids,
            shm_size=shm_size_for(ws.config, s.gpu_ids), network=network, name=new_name(spec.id),
            labels=run_labels(self.session_id, spec.id),
        )
        digest_before = tree_digest(ws.in_dir)
        result = run_container(self.cl, cspec, timeout_s=s.budget.total_s * TIMEOUT_FACTOR, keep=s.keep)
        self.container_runs += 1
        record.attempts.append({"user": user, "network": network, "exit_code": result.exit_code,
                                "timed_out": result.timed_out, "duration_s": round(result.duration_s, 3),
                                "container": cspec.name})
        return RunOutcome(
            image=spec.image, shape=spec.shape, object_type=spec.object_type, in_dir=ws.in_dir, out_dir=out_dir,
            exit_code=result.exit_code, timed_out=result.timed_out, duration_s=result.duration_s, user=user,
            gpu_ids=s.gpu_ids, network=network, export_format=ws.export_format, label=spec.id,
            progress=result.progress, argv=cspec.argv(), container_name=cspec.name,
            in_dir_digest_before=digest_before, in_dir_digest_after=tree_digest(ws.in_dir),
            budget_total_s=s.budget.total_s, budget_first_progress_s=s.budget.first_progress_s,
            budget_heartbeat_s=s.budget.heartbeat_s,
        )

    def cleanup(self) -> None:
        if not self.settings.keep and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)


def outcome_json(record: RunRecord) -> dict[str, Any]:
    from .progress import timing_summary

    o = record.outcome
    if o is None:
        return {"image": record.spec.image, "id": record.spec.id, "kind": record.spec.kind, "skipped": record.skipped}
    tail: list[str] = []
    try:
        tail = o.log_path.read_text(errors="replace").splitlines()[-20:]
    except OSError:
        pass
    return {
        "image": record.spec.image, "id": record.spec.id, "kind": record.spec.kind, "shape": o.shape.name, "object_type": int(o.object_type),
        "export_format": record.spec.export_format, "inputs_release": str(record.spec.release),
        "exit_code": o.exit_code, "timed_out": o.timed_out, "duration_s": round(o.duration_s, 3),
        "user": o.user, "network": o.network, "gpu_ids": list(o.gpu_ids), "argv": o.argv,
        "diagnosis": o.diagnosis, "attempts": record.attempts, "log_tail": tail,
        "progress": [{"seen_s": round(p.seen_s, 3), "line": p.raw.split("\n", 1)[0]} for p in o.progress],
        "progress_timing": timing_summary(o.progress, o.duration_s),
    }


__all__ = ["Conductor", "RunRecord", "RunSpec", "families", "plan"]
