"""Run execution (a room of the conductor, conductor.py): one spec's workspace built as the platform leaves it
(training, retraining with its pretrained model, mining/infer from the chosen training's model, negative inputs),
run once in its container (``_run_once``: containment, input audit, the live status line), its outcome recorded.
A failed run's retries are diagnosis_runs.py; the trained-model cache model_cache.py.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import audit, datasets, guard
from .contracts._values import as_int
from .errors import UnsafeOutput
from .image import ImageInfo
from .model import RunOutcome, Task
from .options import Settings
from .platform import Release
from .runner import LOG_CAP_BYTES, ContainerSpec, new_name, result_files, run_container, run_labels, shm_size_for
from .session import (KIND_TASKS, NEGATIVE_INPUTS, TIMEOUT_FACTOR, RunRecord, RunSpec, off_declared_releases)
from .workspace import (DatasetSpec, ModelPackage, Workspace, build_mining_infer, build_training, package_model,
                        own_tree, tree_digest)

if TYPE_CHECKING:
    from .engines import EnginePool


class RunExecution:
    """``_execute``: a spec's workspace and its run (with the diagnosis policy); ``_run_once``: one container."""

    settings: Settings
    session_id: str
    workdir: Path
    records: dict[RunSpec, RunRecord]
    container_runs: int
    pool: EnginePool
    _lock: threading.RLock

    if TYPE_CHECKING:  # the conductor's other rooms
        def info(self, image: str) -> ImageInfo: ...
        def get(self, spec: RunSpec) -> RunRecord: ...
        def model_sources(self, training: RunSpec) -> list[RunSpec]: ...
        def transfer_for(self, engine: Any, image: str) -> str: ...
        def _cached_model(self, spec: RunSpec) -> RunRecord | None: ...
        def _cache_model(self, spec: RunSpec, pkg: ModelPackage) -> None: ...
        def _run_diagnosed(self, spec: RunSpec, ws: Workspace, record: RunRecord) -> RunOutcome: ...

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

    def _execute_custom(self, spec: RunSpec, build: Callable[[], Workspace]) -> RunRecord:
        """One container run of the workspace ``build`` makes (the fuzzer's inputs): judged like any run, never
        retried (no diagnosis); a defect of ymir-conformance is a record with ``error``."""
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
        return record

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


__all__ = ["RunExecution"]
