"""Renderers of the ledger: terminal summary, report.json, and a self-contained HTML certificate.

``report.json`` is a documented contract: :data:`SCHEMA_VERSION` and the JSON Schema shipped next to this module
(``report.schema.json``, :func:`load_schema`) say what a consumer may rely on. Change the schema and bump the
version together.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import __version__, guard
from ..options import Settings
from ..contracts.basis import basis_of
from ..verdict import VERDICT_ORDER, Ledger, Verdict, answer_words, release_answers, summary_line
from .html import render_certificate

SCHEMA_VERSION = "1.1"
SCHEMA_PATH = Path(__file__).parent / "report.schema.json"
PROGRESS_CAP = 200  # progress points kept per run in report.json (state changes, first/last, the budget gaps)
LOG_LINES = 20_000  # a run log written under logs/: at most its last 20000 lines ...
LOG_CAP = 1024 * 1024  # ... from at most its last MiB
FINDING_KEYS = ("rule", "level", "basis", "image", "run", "area", "releases", "message", "file", "where", "found",
                "expected", "fix", "lost")


def load_schema() -> dict[str, Any]:
    """The JSON Schema of report.json (draft 2020-12)."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def report_data(ledger: Ledger, settings: Settings) -> dict[str, Any]:
    data = ledger.to_json()
    data["schema_version"] = SCHEMA_VERSION
    data["tool"] = {"name": "ymir-conformance", "version": __version__}
    data["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data["settings"] = {
        "profile": settings.profile, "seed": settings.seed, "user": settings.user,
        "gpu_ids": list(settings.gpu_ids), "allow_network": settings.allow_network, "diagnose": settings.diagnose,
        "releases": [str(r) for r in settings.releases], "strict": settings.strict,
        "gate": [str(r) for r in settings.gated],
        "budget": dict(settings.budget.__dict__),
        "hyper_params": [str(p) for p in settings.hyper_params],  # --ymir-set, as config.yaml spells values
        "jobs": settings.jobs,  # --ymir-jobs: container runs at once (per xdist worker)
        "dataset_size": ({k: v for k, v in settings.dataset_size.__dict__.items() if v is not None}
                         if settings.dataset_size else None),
    }
    from ..session import format_notes

    for img in data.get("images", []):  # with the profile's notes (formats judged at SHOULD)
        info = ledger.images.get(img["image"])
        if info is not None:
            img["notes"] = format_notes(info, ledger.releases, settings)
    if settings.fuzz or settings.fuzz_training:  # --ymir-fuzz: the searches are under data["fuzz"]
        data["settings"]["fuzz"] = {"candidates": settings.fuzz, "training": settings.fuzz_training,
                                    "budget_s": settings.fuzz_budget_s}
    for run in data.get("runs", []):
        if "skipped" in run:
            continue
        timing = run.get("progress_timing") or {}
        if "updates" in timing:
            timing["updates"] = int(timing["updates"] or 0)  # a count, never a float
        points = run.get("progress") or []
        run["progress_points"] = len(points)
        run["progress"] = thin_progress(points)
        if settings.report_dir is not None:
            run["log_file"] = log_name(run["image"], run["id"])
    return finish(data)


def finish(data: dict[str, Any], exit_status: int | None = None) -> dict[str, Any]:
    """Fill in what is derived from the rest (after merging xdist parts): findings, both answers per release
    (``platform_accepts`` and the conformance verdict, strict applied), verdicts, exit status. Idempotent."""
    data["findings"] = findings(data.get("judgements", []))
    settings = data.get("settings", {})
    strict = bool(settings.get("strict"))
    gate = set(settings.get("gate") or data.get("releases", []))
    for img in data.get("images", []):
        img["compatibility"] = [release_answers(row, strict) for row in img.get("compatibility", [])]
        img["summary"] = summary_line([(r["release"], r["verdict"], r["must"]) for r in img["compatibility"]])
    verdicts = []
    for release in data.get("releases", []):
        rows = [row for img in data.get("images", []) for row in img.get("compatibility", [])
                if row["release"] == release]
        worst = max((Verdict(row["verdict"]) for row in rows), key=VERDICT_ORDER.index, default=Verdict.UNTESTED)
        must = sorted({m for row in rows for m in row.get("must", [])})
        should = sorted({x for row in rows for x in row.get("should", [])})
        answers = release_answers({"release": release, "verdict": str(worst), "must": must, "should": should},
                                  strict)
        if any(row.get("platform_accepts") is None for row in rows) and answers["platform_accepts"] is True:
            answers["platform_accepts"] = None  # an image not (fully) tested there: not known for the session
        answers["words"] = answer_words(worst, answers["platform_accepts"], must, should)
        verdicts.append({"release": release, "verdict": answers["verdict"], "gated": release in gate,
                         "conformant": answers["conformant"], "platform_accepts": answers["platform_accepts"],
                         "platform_must": answers["platform_must"], "words": answers["words"]})
    data["verdicts"] = verdicts
    data["container_runs"] = int(data.get("container_runs", 0))
    if exit_status is not None:
        data["exit_status"] = int(exit_status)
    else:
        data.setdefault("exit_status", None)
    return data


def findings(judgements: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every violation once, with the releases it was found on (one judgement per release)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for j in judgements:
        for f in j.get("findings", []):
            if f.get("status") != "failed":
                continue
            for v in f.get("violations", []):
                level = v.get("level") or f.get("level")
                key = (j["image"], j["subject"], j["area"], v["rule"], level, v.get("message"), v.get("file"),
                       v.get("where"))
                entry = out.get(key)
                if entry is None:
                    entry = out[key] = {
                        "rule": v["rule"], "level": level, "basis": f.get("basis") or str(basis_of(v["rule"])),
                        "image": j["image"], "run": j["subject"],
                        "area": j["area"], "releases": [], "message": v.get("message", ""),
                        "file": v.get("file") or None, "where": v.get("where") or None,
                        "found": v.get("found") or None, "expected": v.get("expected") or None,
                        "fix": v.get("fix") or None, "lost": v.get("lost"),
                        **({"context": list(v["context"])} if v.get("context") else {}),
                    }
                if j["release"] not in entry["releases"]:
                    entry["releases"].append(j["release"])
    return list(out.values())


def thin_progress(points: list[dict[str, Any]], cap: int = PROGRESS_CAP) -> list[dict[str, Any]]:
    """The progress series, thinned to at most ``cap`` points: the first and last sample, every change of state
    (column 4 of monitor.txt line 1), both ends of the longest gaps (what the time budgets BUD- judge), then
    evenly spaced samples of the rest."""
    if len(points) <= cap:
        return list(points)
    keep: set[int] = {0, len(points) - 1}
    state = None
    for i, p in enumerate(points):
        fields = str(p.get("line", "")).split("\t")
        s = fields[3] if len(fields) > 3 else None
        if s != state:
            keep.update((max(0, i - 1), i))
            state = s
    # the longest gaps between samples, with their ends: the first-progress and heartbeat budgets read them
    gaps = sorted(range(1, len(points)), key=lambda i: points[i]["seen_s"] - points[i - 1]["seen_s"], reverse=True)
    for i in gaps[:cap // 8]:
        keep.update((i - 1, i))
    rest = [i for i in range(len(points)) if i not in keep]
    room = cap - len(keep)
    if room > 0 and rest:
        step = len(rest) / room
        keep.update(rest[int(k * step)] for k in range(room))
    chosen = sorted(keep)
    if len(chosen) > cap:  # pathological: more state changes than the cap; spread evenly, keep both ends
        step = (len(chosen) - 1) / (cap - 1)
        chosen = sorted({chosen[round(k * step)] for k in range(cap)})
    return [points[i] for i in chosen]


def log_name(image: str, run_id: str) -> str:
    """Where a run's log goes, relative to the report directory."""
    return f"logs/{_safe(image)}/{_safe(run_id)}.log"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+@-]", "_", name).lstrip(".") or "_"


def write_logs(records: Iterable[Any], report_dir: Path) -> list[Path]:
    """Each run's /out/ymir-executor-out.log (its last MiB, through the guarded reader: never a file the image
    wrote opened directly) as ``logs/<image>/<run>.log`` under the report directory."""
    written: list[Path] = []
    for rec in records:
        o = rec.outcome
        if o is None:
            continue
        lines = guard.tail_lines(o.out_dir, "ymir-executor-out.log", LOG_LINES, cap=LOG_CAP)
        path = report_dir / log_name(rec.spec.image, rec.spec.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        written.append(path)
    return written


def write_reports(data: dict[str, Any], report_dir: Path) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "report.json"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    html_path = report_dir / "certificate.html"
    html_path.write_text(render_certificate(data))
    from .badge import write_badges

    return [json_path, html_path, *write_badges(data, report_dir)]
