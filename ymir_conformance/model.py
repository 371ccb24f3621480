"""The platform's vocabulary: object types, tasks, task shapes, and what a finished run left behind."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


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
    diagnosis: list[str] = field(default_factory=list)  # e.g. retried as root and then succeeded
    retried_as_root: bool = False
    retried_with_network: bool = False
    in_dir_digest_before: str = ""
    in_dir_digest_after: str = ""
    budget_total_s: float | None = None
    budget_first_progress_s: float | None = None
    budget_heartbeat_s: float | None = None

    @property
    def log_path(self) -> Path:
        return self.out_dir / "ymir-executor-out.log"

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def cpu_mode(self) -> bool:
        return not self.gpu_ids
