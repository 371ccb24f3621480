"""Collecting findings across the session and deciding verdicts (per image, per platform release).

Tests hand their findings to the :class:`Ledger`; renderers (terminal, JSON, HTML) read only the ledger.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .contracts.base import Finding, Level, Status
from .image import ImageInfo
from .platform import Release, describe
from .session import RunRecord, outcome_json


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
        ok = [r for r, v, _, _ in self.compatibility(image)
              if v in (Verdict.CONFORMANT, Verdict.CONFORMANT_WITH_WARNINGS)]
        bad = [(r, m) for r, v, m, _ in self.compatibility(image) if v is Verdict.NOT_CONFORMANT]
        text = f"compatible with {describe(ok)}"
        if bad:
            rules = sorted({x.split(" ")[0] for _, m in bad for x in m})
            text += f", not {describe([r for r, _ in bad])} ({', '.join(rules)})"
        other = [r for r, v, _, _ in self.compatibility(image) if v in (Verdict.UNTESTED, Verdict.INCOMPLETE)]
        if other:
            text += f"; untested or incomplete on {describe(other)}"
        return text

    def to_json(self) -> dict[str, Any]:
        images = []
        for name, info in self.images.items():
            images.append({
                "image": name, "image_id": info.image_id, "object_types": [int(t) for t in info.object_types],
                "declared_tasks": {t.name.lower(): [k.value for k in info.declared_tasks(t)] for t in info.object_types},
                "manifest": info.manifest,
                "compatibility": [{"release": str(r), "verdict": str(v), "must": m, "should": s}
                                  for r, v, m, s in self.compatibility(name)],
                "summary": self.compatible_summary(name),
            })
        return {
            "releases": [str(r) for r in self.releases],
            "images": images,
            "runs": [outcome_json(r) for r in self.records.values()],
            "container_runs": self.container_runs,
            "judgements": [{"image": j.image, "subject": j.subject, "area": j.area, "release": str(j.release),
                            "findings": [f.to_json() for f in j.findings if f.status is not Status.NOT_APPLICABLE]}
                           for j in self.judgements],
        }


def must_and_should(findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
    failed = [f for f in findings if f.status is Status.FAILED]
    return [f for f in failed if f.level is Level.MUST], [f for f in failed if f.level is Level.SHOULD]
