"""The platform's vocabulary: object types, tasks, task shapes, and what a finished run left behind."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ObjectType(enum.IntEnum):
    """``object_type`` as in the platform's proto (``mir_command.proto ObjectType``)."""

    DETECTION = 2
    SEMANTIC_SEGMENTATION = 3
    INSTANCE_SEGMENTATION = 4
    MULTI_MODAL = 50

    @property
    def dir_name(self) -> str:
        """Per-type template directory under /img-man when the manifest lists several types (contract §2)."""
        return {2: "det", 3: "semantic-seg", 4: "instance-seg", 50: "multi-modal"}[int(self)]

    @property
    def short(self) -> str:
        return {2: "det", 3: "semseg", 4: "instseg", 50: "mm"}[int(self)]

    @property
    def is_segmentation(self) -> bool:
        return self in (ObjectType.SEMANTIC_SEGMENTATION, ObjectType.INSTANCE_SEGMENTATION)


class Task(enum.StrEnum):
    """A platform task kind; each maps to one ``/img-man/<task>-template.yaml``."""

    TRAINING = "training"
    MINING = "mining"
    INFER = "infer"


@dataclass(frozen=True)
class TaskShape:
    """How one container run is asked to work: training, mining, infer, or mining+infer in one run (LC-01)."""

    tasks: frozenset[Task]

    @classmethod
    def of(cls, *tasks: Task) -> TaskShape:
        return cls(frozenset(tasks))

    @property
    def name(self) -> str:
        order = [Task.TRAINING, Task.MINING, Task.INFER]
        return "+".join(t.value for t in order if t in self.tasks)

    @property
    def run_training(self) -> bool:
        return Task.TRAINING in self.tasks

    @property
    def run_mining(self) -> bool:
        return Task.MINING in self.tasks

    @property
    def run_infer(self) -> bool:
        return Task.INFER in self.tasks

    @property
    def result_files(self) -> tuple[str, ...]:
        """The result files under /out a run of this shape writes (the platform reads them after the exit)."""
        return tuple(f for run, f in ((self.run_training, "models/result.yaml"), (self.run_mining, "result.tsv"),
                                      (self.run_infer, "infer-result.json")) if run)

    def __str__(self) -> str:
        return self.name


TRAINING = TaskShape.of(Task.TRAINING)
MINING = TaskShape.of(Task.MINING)
INFER = TaskShape.of(Task.INFER)
MINING_INFER = TaskShape.of(Task.MINING, Task.INFER)


@dataclass(frozen=True)
class ProgressSample:
    """One distinct content of /out/monitor.txt, as seen by the live sampler."""

    seen_s: float  # seconds since the container started
    raw: str  # the whole file content at that moment (capped)


@dataclass
class RunOutcome:
    """Everything a finished container run left behind; the checks read only this (and the files it names)."""

    image: str
    shape: TaskShape
    object_type: ObjectType
    in_dir: Path
    out_dir: Path
    exit_code: int | None
    timed_out: bool
    duration_s: float
    user: str
    gpu_ids: tuple[str, ...] = ()
    network: bool = False
    export_format: str | None = None
    label: str = ""  # e.g. "training-det-voc"
    progress: list[ProgressSample] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)  # the equivalent `docker run` command line
    container_name: str = ""
    diagnosis: list[str] = field(default_factory=list)  # e.g. retried as root and then succeeded (diagnosis.py)
    retried_as_root: bool = False  # the judged run is a retry as root of a run that failed as --user (LC-09)
    network_name: str = ""  # a networked run (network=True): the Docker network ('' = the default bridge)
    # --ymir-diagnose=all: the same run on an internal network (no route anywhere) succeeded; this failed run stays
    # the judged one (a networked run is never judged unless --ymir-allow-network) and LC-10 names the cause
    needs_network: bool = False
    in_dir_digest_before: str = ""
    in_dir_digest_after: str = ""
    budget_total_s: float | None = None
    budget_first_progress_s: float | None = None
    budget_heartbeat_s: float | None = None
    # the platform's links (2.x): /in/assets -> the asset cache, a training's /out/tensorboard -> a host folder;
    # the suite made both, so the checks read there (and only there) instead of following links from /out
    asset_cache: Path | None = None
    tensorboard_dir: Path | None = None
    asset_cache_digest_before: str = ""
    asset_cache_digest_after: str = ""
    # The suite's containment (limits.py; the platform sets none) and what the run did against it
    limits: dict[str, Any] = field(default_factory=dict)  # Limits.to_json() of this run; {} = no limits (off)
    oom_killed: bool = False  # the kernel's OOM killer killed a process of the container (memory limit)
    hit_pids_limit: bool = False  # the pids cgroup refused at least one fork/clone
    flood_stopped: bool = False  # stopped by the suite after an endless stdout/stderr flood (LC-13)
    disk_stopped: bool = False  # stopped by the suite: it used more disk than the disk limit (LC-15)
    disk_used_bytes: int = 0
    pids_peak: int | None = None  # the most tasks (processes + threads) seen at once, when measurable
    memory_peak_bytes: int | None = None
    log_bytes: int | None = None  # stdout+stderr bytes the container produced (None: not measured)
    log_bytes_dropped: int = 0  # of those, beyond the runner's cap: not written to ymir-executor-out.log
    log_cap_bytes: int | None = None
    # A run that finished its work (monitor 100% / state 3 and its result files) but did not exit
    never_exited: bool = False  # stopped by the suite after the exit grace; V1 fails it, its outputs are judged
    done_s: float | None = None  # seconds after start when the run was seen done (never_exited runs)
    exit_grace_s: float | None = None
    worked_after_done_s: float = 0.0  # it looked done, then was seen working (CPU, files) this long (idle.py)
    # CPU under the suite's --cpus quota (cgroup cpu.stat / cpuacct), when readable: LC-16
    cpu_usage_s: float | None = None
    cpu_periods: int = 0  # CFS periods in which it had work
    cpu_throttled: int = 0  # ... and was throttled at the quota
    # Downstream runs (infer, mining): the object type ymir 2.1-2.3 register the model with, i.e. the object_type
    # of its training's result.yaml (2 when absent; TR-12). None when not known (no training run this session).
    model_object_type: int | None = None
    # CPU mode (gpu_id '') failed, and a rerun with config.yaml gpu_id '0' (still no device request) succeeded:
    # the image needs a non-empty gpu_id to start (LC-07). The failed run is the one judged (V1).
    needs_gpu_id: bool = False
    # The input-coverage audit (audit.py): which annotation, image, index and model files under /in the run opened,
    # counted against what the index files and config.yaml list; {} = not watched (e.g. `judge` on external dirs)
    inputs_opened: dict[str, Any] = field(default_factory=dict)
    # A training on an export format the image does not declare (its training template names another one): on
    # these releases its MUST findings count as SHOULD ("if a user switches export_format to X in the form,
    # training fails: ..."), since the platform trains on it only when a user edits export_format in the form.
    # ``off_declared_format`` is the export_format value that training got (e.g. 'coco:raw').
    off_declared_on: tuple[Any, ...] = ()  # platform releases (platform.Release)
    off_declared_format: str = ""

    @property
    def log_path(self) -> Path:
        return self.out_dir / "ymir-executor-out.log"

    @property
    def succeeded(self) -> bool:
        """Whether its outputs are judged: it exited 0 in time, or it finished its work and never exited (its
        outputs are complete; V1 fails the run for not exiting)."""
        return self.never_exited or (self.exit_code == 0 and not self.timed_out)

    @property
    def hit_limit(self) -> bool:
        """It ran into the suite's pids or memory limit (LC-11 / LC-12), or was stopped for flooding (LC-13)."""
        return self.oom_killed or self.hit_pids_limit or self.flood_stopped or self.disk_stopped

    @property
    def work_s(self) -> float:
        """How long the run worked: until it was seen done when it never exited (the grace wait is not work),
        else its whole duration. The time budgets judge this."""
        return self.done_s if self.never_exited and self.done_s is not None else self.duration_s

    @property
    def cpu_mode(self) -> bool:
        return not self.gpu_ids
