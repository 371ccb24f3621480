"""Collecting findings across the session and deciding verdicts (per image, per platform release).

Tests hand their findings to the :class:`Ledger`; renderers (terminal, JSON, HTML) read only the ledger.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .contracts.base import Finding, Level, Status, name_command
from .contracts.basis import Basis, basis_of, headline
from .image import ImageInfo
from .platform import Release, describe
from .session import RunRecord, format_notes, outcome_json


class Verdict(enum.StrEnum):
    """The conformance verdict on a release: no MUST finding of any basis (with ``--ymir-strict``: no SHOULD
    either). The platform's own answer (``platform_accepts``) is kept beside it: see :func:`release_answers`."""

    CONFORMANT = "conformant"
    CONFORMANT_WITH_WARNINGS = "conformant with warnings"
    NOT_CONFORMANT = "not conformant"
    NOT_CONFORMANT_STRICT = "not conformant (strict)"  # SHOULD findings under --ymir-strict
    INCOMPLETE = "incomplete"  # something could not be evaluated
    UNTESTED = "untested"


CONFORMANT_VERDICTS = (Verdict.CONFORMANT, Verdict.CONFORMANT_WITH_WARNINGS)
FAILED_VERDICTS = (Verdict.NOT_CONFORMANT, Verdict.NOT_CONFORMANT_STRICT)


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
                 Verdict.NOT_CONFORMANT_STRICT, Verdict.NOT_CONFORMANT]  # merging (xdist workers): the worst wins


# --------------------------------------------------------------------------------------------------------
# Two answers per release: does the platform accept the image, and is it conformant (issue 18)
# --------------------------------------------------------------------------------------------------------


def rule_id(entry: str) -> str:
    """'IN-11 (training-det-voc)' -> 'IN-11'."""
    return entry.split(" ", 1)[0]


def platform_rules(must: Iterable[str]) -> list[str]:
    """The MUST rules (of entries such as 'TR-02 (det-voc)') whose basis is the platform's own code."""
    return sorted({rule_id(m) for m in must if basis_of(rule_id(m)) is Basis.PLATFORM}, key=_rule_order)


def platform_accepts(verdict: Verdict | str, must: Iterable[str]) -> bool | None:
    """False: a MUST rule of basis platform is broken (the platform rejects the output, fails the task or loses
    data); True: none, on a release where every run was judged; None: untested or incomplete."""
    if platform_rules(must):
        return False
    return None if Verdict(verdict) in (Verdict.UNTESTED, Verdict.INCOMPLETE) else True


def apply_strict(verdict: Verdict | str, strict: bool) -> Verdict:
    """Under ``--ymir-strict`` a SHOULD finding makes the verdict 'not conformant (strict)'."""
    v = Verdict(verdict)
    return Verdict.NOT_CONFORMANT_STRICT if strict and v is Verdict.CONFORMANT_WITH_WARNINGS else v


def _rule_order(rule: str) -> tuple[int, str, int]:
    prefix, _, num = rule.partition("-")
    order = ["IM", "V14", "LC", "V1", "BUD", "IN", "MON", "TR", "INF", "MIN"]
    digits = "".join(ch for ch in num if ch.isdigit())
    return (order.index(prefix) if prefix in order else 99, prefix, int(digits or 0))


def explain_rules(rules: Iterable[str], limit: int = 3) -> str:
    """'IN-11 (never opened its annotations: a model trained on nothing), IN-13 (...)' (at most ``limit``)."""
    ids = sorted(dict.fromkeys(rule_id(r) for r in rules), key=_rule_order)
    text = ", ".join(f"{r} ({headline(r)})" for r in ids[:limit])
    return text + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def answer_words(verdict: Verdict | str, accepts: bool | None, must: Iterable[str], should: Iterable[str]) -> str:
    """The two answers of one release in words, the same on every surface (terminal, JUnit, report.json,
    certificate, badge tooltip): 'accepted by the platform; not conformant: IN-11 (never opened its
    annotations: a model trained on nothing)'."""
    v = Verdict(verdict)
    must, should = list(must), list(should)
    if v is Verdict.UNTESTED:
        return "untested"
    plat = platform_rules(must)
    head = ("accepted by the platform" if accepts else f"rejected by the platform: {explain_rules(plat)}"
            if accepts is False else "platform acceptance not known")
    if v is Verdict.INCOMPLETE:
        tail = "incomplete: not every run could be judged"
    elif v is Verdict.CONFORMANT:
        tail = "conformant"
    elif v is Verdict.CONFORMANT_WITH_WARNINGS:
        tail = f"conformant with warnings: SHOULD {', '.join(sorted(set(map(rule_id, should)), key=_rule_order))}"
    elif v is Verdict.NOT_CONFORMANT_STRICT:
        tail = f"not conformant (strict): {explain_rules(should)}"
    else:
        others = [m for m in must if rule_id(m) not in plat]
        if accepts is False:
            tail = "not conformant" + (f"; also {explain_rules(others)}" if others else "")
        else:
            tail = f"not conformant: {explain_rules(others or must)}"
    return f"{head}; {tail}"


def release_answers(row: dict[str, Any], strict: bool) -> dict[str, Any]:
    """A compatibility row ({release, verdict, must, should}) with both answers filled in (idempotent):
    ``verdict`` (strict applied), ``conformant``, ``platform_accepts``, ``platform_must`` and ``words``."""
    verdict = apply_strict(row["verdict"], strict)
    accepts = platform_accepts(verdict, row.get("must", []))
    return {**row, "verdict": str(verdict),
            "conformant": (True if verdict in CONFORMANT_VERDICTS else False if verdict in FAILED_VERDICTS
                           else None),
            "platform_accepts": accepts, "platform_must": platform_rules(row.get("must", [])),
            "words": answer_words(verdict, accepts, row.get("must", []), row.get("should", []))}


def summary_line(rows: list[tuple[str, str, list[str]]]) -> str:
    """'conformant on 2.4-2.5; accepted by the platform, not conformant on 2.1-2.3 (IN-11); rejected by the
    platform on 1.1 (TR-02); untested or incomplete on 2.0' from (release, verdict, MUST rules) rows."""
    def rel(rs: list[str]) -> str:
        return describe([Release.parse(r) for r in rs])

    def rules(ms: list[list[str]]) -> str:
        return ", ".join(sorted({rule_id(x) for m in ms for x in m}, key=_rule_order))

    ok = [r for r, v, _ in rows if v in CONFORMANT_VERDICTS]
    strict = [r for r, v, _ in rows if v == Verdict.NOT_CONFORMANT_STRICT]
    accepted = [(r, m) for r, v, m in rows if v == Verdict.NOT_CONFORMANT and not platform_rules(m)]
    rejected = [(r, m) for r, v, m in rows if v == Verdict.NOT_CONFORMANT and platform_rules(m)]
    other = [r for r, v, _ in rows if v in (Verdict.UNTESTED, Verdict.INCOMPLETE)]
    parts = [f"conformant on {rel(ok)}"] if ok else []
    if strict:
        parts.append(f"accepted by the platform, not conformant (strict: SHOULD findings) on {rel(strict)}")
    if accepted:
        parts.append(f"accepted by the platform, not conformant on {rel([r for r, _ in accepted])} "
                     f"({rules([m for _, m in accepted])})")
    if rejected:
        parts.append(f"rejected by the platform on {rel([r for r, _ in rejected])} "
                     f"({rules([m for _, m in rejected])})")
    if other:
        parts.append(f"untested or incomplete on {rel(other)}")
    return "; ".join(parts) or "nothing judged"


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
