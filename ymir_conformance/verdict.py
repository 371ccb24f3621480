"""Collecting findings across the session and deciding verdicts (per image, per platform release).

Tests hand their findings to the :class:`Ledger`; renderers (terminal, JSON, HTML) read only the ledger.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .contracts.base import Finding, Level, Status, name_command
from .image import ImageInfo
from .platform import Release, describe
from .session import RunRecord, format_notes, outcome_json


class Verdict(enum.StrEnum):
    CONFORMANT = "conformant"
    CONFORMANT_WITH_WARNINGS = "conformant with warnings"
    NOT_CONFORMANT = "not conformant"
    INCOMPLETE = "incomplete"  # something could not be evaluated
    UNTESTED = "untested"


@dataclass
class Judgement:
    """The findings of one test (a contract area) on one run (or the image), for one release."""

    image: str
    subject: str  # run id, or "image"
    area: str
    release: Release
    findings: list[Finding]

    def violated(self, level: Level) -> list[str]:
        return sorted({f.check.rule for f in self.findings if f.status is Status.FAILED and f.level is level})

    @property
    def not_evaluated(self) -> bool:
        return any(f.status is Status.NOT_EVALUATED for f in self.findings)


@dataclass
class Ledger:
    judgements: list[Judgement] = field(default_factory=list)
    images: dict[str, ImageInfo] = field(default_factory=dict)
    records: dict[str, RunRecord] = field(default_factory=dict)  # run id -> record
    releases: tuple[Release, ...] = ()
    container_runs: int = 0
    fuzz: list[dict[str, Any]] = field(default_factory=list)  # each --ymir-fuzz search's outcome (fuzz/search.py)

    def add(self, image: str, subject: str, area: str, per_release: dict[Release, list[Finding]]) -> None:
        for release, findings in per_release.items():
            self.judgements.append(Judgement(image, subject, area, release, findings))

    def verdict(self, image: str, release: Release) -> tuple[Verdict, list[str], list[str]]:
        js = [j for j in self.judgements if j.image == image and j.release == release]
        if not js:
            return Verdict.UNTESTED, [], []
        must = sorted({f"{r} ({j.subject})" for j in js for r in j.violated(Level.MUST)})
        should = sorted({r for j in js for r in j.violated(Level.SHOULD)})
        if must:
            return Verdict.NOT_CONFORMANT, must, should
        if all(j.subject == "image" for j in js):
            return Verdict.UNTESTED, must, should  # no task can run there (e.g. segmentation before 2.1)
        skipped = [r for r in self.records.values() if r.spec.image == image and r.outcome is None
                   and "declares no" not in r.skipped]
        if any(j.not_evaluated for j in js) or skipped:
            return Verdict.INCOMPLETE, must, should
        return (Verdict.CONFORMANT_WITH_WARNINGS if should else Verdict.CONFORMANT), must, should

    def compatibility(self, image: str) -> list[tuple[Release, Verdict, list[str], list[str]]]:
        return [(r, *self.verdict(image, r)) for r in self.releases]

    def compatible_summary(self, image: str) -> str:
        return summary_line([(str(r), str(v), m) for r, v, m, _ in self.compatibility(image)])

    def to_json(self) -> dict[str, Any]:
        images = []
        for name, info in self.images.items():
            images.append({
                "image": name, "image_id": info.image_id, "object_types": [int(t) for t in info.object_types],
                "declared_tasks": {t.name.lower(): [k.value for k in info.declared_tasks(t)] for t in info.object_types},
                "manifest": info.manifest,
                "repo_digests": list(info.repo_digests), "size_bytes": info.size_bytes,
                "cmd": list(info.cmd), "entrypoint": list(info.entrypoint),
                "notes": format_notes(info, self.releases),
                "compatibility": [{"release": str(r), "verdict": str(v), "must": m, "should": s}
                                  for r, v, m, s in self.compatibility(name)],
                "summary": self.compatible_summary(name),
            })
        def findings_json(j: Judgement) -> list[dict[str, Any]]:
            info = self.images.get(j.image)
            out = [f.to_json() for f in j.findings if f.status is not Status.NOT_APPLICABLE]
            for f in out if info is not None else []:  # fix texts name the image's real start command
                for v in f["violations"]:
                    if v.get("fix"):
                        v["fix"] = name_command(v["fix"], info.cmd, info.entrypoint) if info else v["fix"]
            return out

        return {
            "releases": [str(r) for r in self.releases],
            "images": images,
            "runs": [outcome_json(r) for r in self.records.values()],
            "container_runs": self.container_runs,
            "fuzz": list(self.fuzz),
            "judgements": [{"image": j.image, "subject": j.subject, "area": j.area, "release": str(j.release),
                            "findings": findings_json(j)}
                           for j in self.judgements],
        }


VERDICT_ORDER = [Verdict.UNTESTED, Verdict.CONFORMANT, Verdict.CONFORMANT_WITH_WARNINGS, Verdict.INCOMPLETE,
                 Verdict.NOT_CONFORMANT]  # merging partial verdicts (xdist workers): the worst wins


def summary_line(rows: list[tuple[str, str, list[str]]]) -> str:
    """'compatible with 2.4-2.5, not 2.1-2.3 (TR-12); untested or incomplete on 1.1-2.0' from
    (release, verdict, MUST rules) rows."""
    def rel(rs: list[str]) -> str:
        return describe([Release.parse(r) for r in rs])

    ok = [r for r, v, _ in rows if v in (Verdict.CONFORMANT, Verdict.CONFORMANT_WITH_WARNINGS)]
    bad = [(r, m) for r, v, m in rows if v == Verdict.NOT_CONFORMANT]
    other = [r for r, v, _ in rows if v in (Verdict.UNTESTED, Verdict.INCOMPLETE)]
    parts = [f"compatible with {rel(ok)}"] if ok else []
    if bad:
        rules = sorted({x.split(" ")[0] for _, m in bad for x in m})
        parts.append(f"{'not' if ok else 'not compatible with'} {rel([r for r, _ in bad])} ({', '.join(rules)})")
    text = ", ".join(parts)
    if other:
        text += f"{'; ' if text else ''}untested or incomplete on {rel(other)}"
    return text or "nothing judged"


def merge_reports(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge report data from several processes (pytest-xdist workers) into one, worst verdict winning.

    ``container_runs`` is the sum of the containers each process really ran: a run that happened on two workers
    counts twice. ``runs`` lists each run once (the first process's record), and ``repeated_runs`` names the
    runs that happened in more than one process, with how many (run id -> processes), so nothing is hidden.
    """
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = {**parts[0], "images": [], "runs": [], "judgements": [], "container_runs": 0,
                              "repeated_runs": {}, "fuzz": []}
    images: dict[str, dict[str, Any]] = {}
    seen_runs: dict[tuple[str, str], int] = {}
    for part in parts:
        merged["container_runs"] += part.get("container_runs", 0)
        merged["judgements"] += part.get("judgements", [])
        merged["fuzz"] += part.get("fuzz", [])
        for run in part.get("runs", []):
            key = (run.get("image", ""), run["id"])
            if "skipped" in run and "attempts" not in run:
                if key not in seen_runs:  # no container ran (a skip, a cached model): nothing repeated
                    seen_runs[key] = 0
                    merged["runs"].append(run)
                continue
            if key not in seen_runs:
                merged["runs"].append(run)
            elif seen_runs[key] == 0:  # a real run replaces a skip record seen first
                merged["runs"] = [r for r in merged["runs"] if (r.get("image", ""), r["id"]) != key] + [run]
            seen_runs[key] = seen_runs.get(key, 0) + 1
    merged["repeated_runs"] = {run_id: n for (_, run_id), n in seen_runs.items() if n > 1}
    for part in parts:
        for img in part.get("images", []):
            if img["image"] not in images:
                images[img["image"]] = {**img, "compatibility": [dict(r) for r in img["compatibility"]]}
                continue
            into = images[img["image"]]
            for row, other in zip(into["compatibility"], img["compatibility"]):
                worst = max(row["verdict"], other["verdict"], key=lambda v: VERDICT_ORDER.index(Verdict(v)))
                row.update(verdict=worst, must=sorted(set(row["must"]) | set(other["must"])),
                           should=sorted(set(row["should"]) | set(other["should"])))
    for img in images.values():
        img["summary"] = summary_line([(r["release"], r["verdict"], r["must"]) for r in img["compatibility"]])
        merged["images"].append(img)
    return merged


def must_and_should(findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
    failed = [f for f in findings if f.status is Status.FAILED]
    return [f for f in failed if f.level is Level.MUST], [f for f in failed if f.level is Level.SHOULD]
