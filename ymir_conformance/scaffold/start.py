#!/usr/bin/env python3
"""A minimal YMIR executor (object_type 2, detection): training, mining and infer, standard library + PyYAML.

The platform starts the image with no command; the Dockerfile's CMD runs this file. It reads /in/env.yaml to
learn the task and every path, /in/config.yaml for the hyper-parameters and class_names, and writes:
  /out/monitor.txt            progress (overwritten, never appended): state 2, or 4 on failure
  /out/models/<stage>/...     the model files, and /out/models/result.yaml (model_stages, best_stage_name)
  /out/tensorboard/           TensorBoard events (tfevents.py: no torch needed)
  /out/infer-result.json      {"detection": {"<image basename>": {"boxes": [...]}}}
  /out/result.tsv             "<candidate path>\t<score>", best first
Everything printed goes to /out/ymir-executor-out.log; on failure the error is printed last.
Replace the parts marked TODO with your model.
"""
import hashlib
import json
import os
import sys
import time
import traceback
from typing import Any

import yaml

from tfevents import EventWriter

RUNNING, ERROR = 2, 4  # never write 3 (DONE): the platform does that itself (MON-06)


def load_yaml(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        value = yaml.safe_load(f)
    return value if isinstance(value, dict) else {}


class Monitor:
    def __init__(self, env: dict[str, Any]) -> None:
        self.path = env["output"]["monitor_file"]
        self.task_id = env["task_id"]
        self.percent = 0.0

    def write(self, percent: float, state: int = RUNNING, code: int = 0) -> None:
        self.percent = max(self.percent, min(1.0, percent))  # never backwards
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{self.task_id}\t{time.time():.6f}\t{self.percent:.4f}\t{state}\t{code}\n")
        os.replace(tmp, self.path)  # atomic: the platform never reads a half-written line


def read_index(path: str) -> list[list[str]]:
    """The lines of an index TSV, split on TAB (training: image, annotation; candidates: image)."""
    if not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def score(path: str) -> float:
    """TODO: a real model. A stable pseudo-score in [0, 1] from the image bytes."""
    with open(path, "rb") as f:
        return int(hashlib.sha1(f.read()).hexdigest()[:8], 16) / 0xFFFFFFFF


def train(env: dict[str, Any], cfg: dict[str, Any], monitor: Monitor) -> None:
    out = env["output"]
    rows = read_index(env["input"]["training_index_file"]) + read_index(env["input"]["val_index_file"])
    classes = list(cfg.get("class_names") or [])
    counts = {name: 0 for name in classes}
    for i, row in enumerate(rows):  # TODO: train. Here: read every annotation file and count class names
        if len(row) > 1 and os.path.isfile(row[1]):
            with open(row[1], encoding="utf-8", errors="replace") as f:
                text = f.read()
            for name in classes:
                counts[name] += text.count(f">{name}<") + text.count(f'"{name}"')
        monitor.write(0.8 * (i + 1) / max(1, len(rows)))
    epochs = int(cfg.get("epochs", 1))
    writer = EventWriter(out["tensorboard_dir"])
    stages: dict[str, dict[str, Any]] = {}
    for epoch in range(1, epochs + 1):
        name = f"epoch_{epoch}"  # a Python identifier: no '@' or '/', at most 100 characters
        os.makedirs(os.path.join(out["models_dir"], name), exist_ok=True)
        with open(os.path.join(out["models_dir"], name, "model.json"), "w", encoding="utf-8") as f:
            json.dump({"class_names": classes, "counts": counts, "epoch": epoch}, f)
        m_ap = float(round(0.3 + 0.1 * epoch / epochs, 4))  # plain floats in [0, 1], never percentages
        writer.scalar("train/loss", 1.0 / epoch, epoch)
        writer.scalar("val/mAP", m_ap, epoch)
        stages[name] = {"stage_name": name, "files": ["model.json"], "timestamp": int(time.time()), "mAP": m_ap}
        best = max(stages, key=lambda s: stages[s]["mAP"])
        result = {"model_stages": stages, "best_stage_name": best, "mAP": stages[best]["mAP"], "object_type": 2}
        tmp = out["training_result_file"] + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(result, f)
        os.replace(tmp, out["training_result_file"])  # written after every stage (a crash keeps the last one)
        monitor.write(0.8 + 0.2 * epoch / epochs)
    writer.close()
    print(f"training done: {len(rows)} images, stages {', '.join(stages)}", flush=True)


def load_model(cfg: dict[str, Any]) -> dict[str, Any]:
    """Open every model file the platform names in model_params_path (TODO: load your weights)."""
    model: dict[str, Any] = {}
    for path in cfg.get("model_params_path") or []:
        if path.endswith(".json") and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                model = dict(json.load(f))
    return model


def mine_and_infer(env: dict[str, Any], cfg: dict[str, Any], monitor: Monitor) -> None:
    load_model(cfg)
    candidates = [row[0] for row in read_index(env["input"]["candidate_index_file"])]
    scores: dict[str, float] = {}
    for i, path in enumerate(candidates):
        scores[path] = score(path)
        monitor.write(0.9 * (i + 1) / max(1, len(candidates)))
    out = env["output"]
    if env.get("run_mining"):
        with open(out["mining_result_file"], "w", encoding="utf-8") as f:
            for path in sorted(candidates, key=lambda p: -scores[p]):
                f.write(f"{path}\t{scores[path]:.6f}\n")
    if env.get("run_infer"):
        # TODO: real boxes: {"box": {"x": int, "y": int, "w": int, "h": int, "rotate_angle": 0.0},
        #                    "class_name": one of class_names, "score": float in [0, 1]}
        detection: dict[str, dict[str, list[Any]]] = {os.path.basename(p): {"boxes": []} for p in candidates}
        with open(out["infer_result_file"], "w", encoding="utf-8") as f:
            json.dump({"detection": detection}, f)
    print(f"{len(candidates)} candidates scored", flush=True)


def main() -> int:
    env = load_yaml("/in/env.yaml")
    cfg = load_yaml(env["input"]["config_file"])
    monitor = Monitor(env)
    try:
        print(f"task {env['task_id']}: training={env.get('run_training')} mining={env.get('run_mining')} "
              f"infer={env.get('run_infer')} gpu_id={cfg.get('gpu_id')!r}", flush=True)
        monitor.write(0.0)
        if env.get("run_training"):
            train(env, cfg, monitor)
        if env.get("run_mining") or env.get("run_infer"):
            mine_and_infer(env, cfg, monitor)
        monitor.write(1.0)  # 100 %, still state 2: the platform marks the task done
        return 0
    except Exception as exc:  # the platform shows the last lines of the log: print the cause last
        traceback.print_exc()
        monitor.write(monitor.percent, ERROR, 300001)
        print(f"failed: {type(exc).__name__}: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
