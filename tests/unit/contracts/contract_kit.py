"""Canned /in and /out trees for the contract checks: a minimal workspace the way the platform builds it, and
conformant outputs that each test then breaks in one place."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from ymir_conformance.contracts import Finding, Status, Violation, judge
from ymir_conformance.model import ObjectType, ProgressSample, RunOutcome, Task, TaskShape
from ymir_conformance.platform import Release
from ymir_conformance.workspace import config_yaml, env_yaml, prepare_out, write_yaml

CLASS_NAMES = ["cat", "dog"]
SIZES = [(64, 48), (40, 30), (50, 50)]
TASK_ID = "t0000001000002ebb7f11653630774"
T0 = 1663839980.0


def rec(percent: float, state: int = 2, code: int = 0, ts: float | None = None, tid: str = TASK_ID) -> str:
    return f"{tid}\t{(T0 if ts is None else ts):.6f}\t{percent:.2f}\t{state}\t{code}\n"


PENDING = rec(0.0, state=1, ts=T0 - 5)


@dataclass
class Kit:
    root: Path
    shape: TaskShape
    object_type: ObjectType
    candidates: list[str] = field(default_factory=list)  # container paths
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # basename -> (w, h)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def in_dir(self) -> Path:
        return self.root / "in"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def basenames(self) -> list[str]:
        return [c.rsplit("/", 1)[1] for c in self.candidates]

    # -- judging --------------------------------------------------------------------------------------------
    def outcome(self, **kw: Any) -> RunOutcome:
        args: dict[str, Any] = dict(
            image="test/image:1", shape=self.shape, object_type=self.object_type, in_dir=self.in_dir,
            out_dir=self.out_dir, exit_code=0, timed_out=False, duration_s=10.0, user="1000:1000",
            gpu_ids=("0",), progress=[ProgressSample(0.2, PENDING), ProgressSample(2.0, rec(0.1, ts=T0 + 2)),
                                      ProgressSample(6.0, rec(0.6, ts=T0 + 6)), ProgressSample(9.0, rec(1.0, ts=T0 + 9))],
        )
        args.update(self.defaults)
        args.update(kw)
        return RunOutcome(**args)

    def judge(self, release: str = "2.5", **kw: Any) -> list[Finding]:
        return judge(self.outcome(**kw), Release.parse(release))

    def failed(self, release: str = "2.5", **kw: Any) -> set[str]:
        return {f.check.rule for f in self.judge(release, **kw) if f.status == Status.FAILED}

    def violations(self, rule: str, release: str = "2.5", **kw: Any) -> list[Violation]:
        return [v for f in self.judge(release, **kw) if f.check.rule == rule for v in f.violations]

    def finding(self, rule: str, release: str = "2.5", **kw: Any) -> Finding:
        return next(f for f in self.judge(release, **kw) if f.check.rule == rule)

    # -- writing /out ---------------------------------------------------------------------------------------
    def write(self, rel: str, content: str | bytes) -> Path:
        p = self.out_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    def monitor(self, text: str) -> None:
        self.write("monitor.txt", text)

    def log(self, text: str) -> None:
        self.write("ymir-executor-out.log", text)

    def result_yaml(self, value: Any) -> None:
        self.write("models/result.yaml", value if isinstance(value, str) else yaml.safe_dump(value))

    def infer_json(self, value: Any) -> None:
        self.write("infer-result.json", value if isinstance(value, str) else json.dumps(value))

    def mining_tsv(self, text: str) -> None:
        self.write("result.tsv", text)

    # -- conformant outputs ---------------------------------------------------------------------------------
    def good_training(self, legacy: bool = False, metric: str | None = None) -> dict[str, Any]:
        metric = metric or {2: "mAP", 3: "mIoU", 4: "maskAP", 50: "mAP"}[int(self.object_type)]
        if legacy:
            self.write("models/best.pt", b"weights")
            self.write("models/config.py", "cfg = 1\n")
            res: dict[str, Any] = {"model": ["best.pt", "config.py"], "map": 0.8}
        else:
            stages: dict[str, Any] = {}
            for name, value in (("epoch10", 0.6), ("epoch20", 0.72)):
                self.write(f"models/{name}/{name}.pt", b"weights")
                stages[name] = {"stage_name": name, "files": [f"{name}.pt", "config.py"],
                                "timestamp": int(T0), metric: value}
                if metric != "mAP":
                    stages[name]["mAP"] = value
            self.write("models/config.py", "cfg = 1\n")
            res = {"best_stage_name": "epoch20", "model_stages": stages, "object_type": int(self.object_type),
                   "evaluate_config": {"conf_thr": 0.005, "iou_thr": 0.5}}
        self.result_yaml(res)
        write_event_file(self.out_dir / "tensorboard")
        return res

    def good_det(self, release: str = "2.5") -> dict[str, Any]:
        key = "annotations" if Release.parse(release) < Release(2, 0) else "boxes"
        det = {b: {key: [{"box": {"x": 1, "y": 2, "w": 10, "h": 10}, "class_name": "cat", "score": 0.9},
                             {"box": {"x": 5, "y": 5, "w": 20, "h": 12}, "class_name": "dog", "score": 0.4}]}
               for b in self.basenames}
        doc = {"detection": det}
        self.infer_json(doc)
        return doc

    def good_coco(self) -> dict[str, Any]:
        import pycocotools.mask as mask_util

        images, annotations = [], []
        for i, b in enumerate(self.basenames, start=1):
            w, h = self.sizes[b]
            images.append({"id": i, "file_name": b, "width": w, "height": h})
            for cid in (0, 1):
                m = np.zeros((h, w), dtype=np.uint8)
                m[2 + cid * 10: 8 + cid * 10, 3:13] = 1
                rle = mask_util.encode(np.asfortranarray(m))
                ann = {"id": len(annotations) + 1, "image_id": i, "category_id": cid, "iscrowd": 0,
                       "bbox": [3, 2 + cid * 10, 10, 6], "area": 60,
                       "segmentation": {"counts": rle["counts"].decode("ascii"), "size": [h, w]}}
                if self.object_type != ObjectType.SEMANTIC_SEGMENTATION:
                    ann["confidence"] = 0.8
                annotations.append(ann)
        doc = {"images": images, "categories": [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}],
               "annotations": annotations}
        self.infer_json(doc)
        return doc

    def good_mining(self) -> str:
        text = "".join(f"{c}\t{0.9 - 0.1 * i:.3f}\n" for i, c in enumerate(self.candidates))
        self.mining_tsv(text)
        return text

    def conformant(self, release: str = "2.5") -> Kit:
        self.monitor(rec(1.0, ts=T0 + 9.5))
        self.log("loading model\ntraining\ndone\n")
        if self.shape.run_training:
            self.good_training(legacy=Release.parse(release) < Release(2, 0))
        if self.shape.run_infer:
            if self.object_type == ObjectType.DETECTION:
                self.good_det(release)
            else:
                self.good_coco()
        if self.shape.run_mining:
            self.good_mining()
        return self


def write_event_file(logdir: Path) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    try:
        for step in range(3):
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))])))
    finally:
        writer.close()


def make_kit(root: Path, shape: TaskShape, object_type: ObjectType = ObjectType.DETECTION,
             release: str = "2.5", gpu_id: str = "0") -> Kit:
    """A workspace as the platform builds it (contract §3): env.yaml, config.yaml, index files, assets."""
    kit = Kit(root, shape, object_type)
    kit.in_dir.mkdir(parents=True)
    prepare_out(kit.out_dir, TASK_ID)
    (kit.out_dir / "monitor.txt").write_text(PENDING)  # pinned to T0, like the progress samples
    rel = Release.parse(release)
    mining_or_infer = shape.run_mining or shape.run_infer
    write_yaml(kit.in_dir / "env.yaml", env_yaml(TASK_ID, shape, rel))
    config = config_yaml(
        {}, task_id=TASK_ID, class_names=list(CLASS_NAMES), gpu_ids=tuple(g for g in gpu_id.split(",") if g),
        object_type=object_type, release=rel, shape=shape,
        model_params=["/in/models/epoch20/epoch20.pt"] if mining_or_infer else None,
    )
    write_yaml(kit.in_dir / "config.yaml", config)
    lines = []
    for i, (w, h) in enumerate(SIZES):
        img = Image.new("RGB", (w, h), color=(i * 40, 100, 200))
        data_path = kit.in_dir / "tmp.png"
        img.save(data_path)
        data = data_path.read_bytes()
        data_path.unlink()
        sha = hashlib.sha1(data).hexdigest()
        rel_path = f"{sha[-2:]}/{sha}.png"
        (kit.in_dir / "assets" / sha[-2:]).mkdir(parents=True, exist_ok=True)
        (kit.in_dir / "assets" / rel_path).write_bytes(data)
        lines.append(f"/in/assets/{rel_path}")
        kit.sizes[f"{sha}.png"] = (w, h)
    if mining_or_infer:
        kit.candidates = lines
        (kit.in_dir / "candidate-index.tsv").write_text("".join(ln + "\n" for ln in lines))
    else:
        (kit.in_dir / "train-index.tsv").write_text("".join(f"{ln}\t/in/annotations/x.xml\n" for ln in lines[:2]))
        (kit.in_dir / "val-index.tsv").write_text(f"{lines[2]}\t/in/annotations/y.xml\n")
    return kit


KitFactory = Callable[..., Kit]

SHAPES = {
    "training": TaskShape.of(Task.TRAINING),
    "mining": TaskShape.of(Task.MINING),
    "infer": TaskShape.of(Task.INFER),
    "mining+infer": TaskShape.of(Task.MINING, Task.INFER),
}
