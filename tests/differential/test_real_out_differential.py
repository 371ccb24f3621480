"""Verdict differential on real /out trees: fixture images run by the suite, judged by the platform's own code.

Each image below is run once (module-scoped cache; quick profile, the Conductor and plan of the suite, as
tests/integration/test_gallery.py does) for the release families 2.3 (2.1-2.3 inputs, protocol 1.1.0) and 1.1
(protocol 0.0.0: the image writes result.yaml ``model``/``map`` and the ``annotations`` key). Every run's /out goes
to the platform's post-processing of that release (oracle.py ``judge``: 2.3.0 for the 2.3 runs, 1.1.0 for the 1.1
runs) and to the suite's judge on that release; per part they must agree the way test_verdict_differential.py
requires (platform rejects <=> suite MUST in that group; platform accepts and loses data => the suite reports it),
and per release the suite's ``platform_accepts`` (no MUST finding of basis platform, verdict.platform_accepts) is
the platform's own answer over every run: false when a container failed or a part was rejected, true when every
part was kept without loss (a part accepted with a loss: the rule's level decides). The images that do not do their job (IN-11, IN-13: the platform accepts them) and the one whose
scores only break a SHOULD (MIN-07) are among them (issue 18).
Needs Docker and the fixture images (scripts/bootstrap): skipped without an engine, failed with
YMIR_REQUIRE_DOCKER=1 (tests/conftest.py docker_client).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.contracts.base import Level, Status, judge
from ymir_conformance.options import Settings
from ymir_conformance.platform import Release
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import RunRecord, plan
from ymir_conformance.verdict import Verdict, platform_accepts

from .kit import Diff, classify, get_oracle, releases
from .test_verdict_differential import GROUPS, compare_verdicts

pytestmark = [pytest.mark.differential, pytest.mark.docker]

ORACLE_FOR = {Release(2, 3): "2.3.0", Release(1, 1): "1.1.0"}
# image -> task kinds; a handful that break the rules the platform's post-processing enforces, plus the references
IMAGES: dict[str, tuple[str, ...]] = {
    "reference-det": ("training", "infer", "mining", "mining+infer"),
    "reference-instseg": ("training", "infer"),  # 2.3 only: 1.1 has no segmentation
    "broken-metric-percent": ("training",),
    "broken-absolute-model-path": ("training",),
    "broken-no-result": ("training",),
    "broken-monitor-spaces": ("training",),
    "broken-float-box-coords": ("infer",),
    "broken-boxes-without-score": ("infer",),
    "broken-unknown-class-names": ("infer",),
    "broken-mining-spaces": ("mining",),
    # accepted by the platform, not conformant (integrity): platform_accepts must stay true (issue 18)
    "broken-ignores-annotations": ("training",),
    "broken-trains-on-predictions": ("training",),
    "broken-ignores-model": ("infer",),
    # accepted and kept by the platform, a SHOULD only (MIN-07): no platform MUST
    "broken-tensor-scores": ("mining",),
}


def _families(config: pytest.Config) -> tuple[Release, ...]:
    """The families above whose oracle release is selected (--ymir-oracle-releases / YMIR_ORACLE_RELEASES)."""
    chosen = set(releases(config))
    return tuple(r for r, o in ORACLE_FOR.items() if o in chosen)


@pytest.fixture(scope="module")
def image_runs(request: pytest.FixtureRequest, docker_client: docker.DockerClient, fixture_image: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[RunRecord]]:
    """name -> the records of its runs at 2.3 and 1.1, each image run once per module."""
    cache: dict[str, list[RunRecord]] = {}
    families = _families(request.config)
    if not families:
        pytest.skip(f"none of the selected oracle releases {releases(request.config)} is one these runs target "
                    f"({sorted(ORACLE_FOR.values())})")

    def get(name: str) -> list[RunRecord]:
        if name not in cache:
            tag = fixture_image(name)
            workdir = tmp_path_factory.mktemp(name)
            settings = Settings(images=(tag,), profile="quick", tasks=IMAGES[name], workdir=workdir,
                                releases=families)
            conductor = Conductor(docker_client, settings, workdir, uuid.uuid4().hex[:12])
            info = conductor.info(tag)
            cache[name] = [conductor.get(spec) for spec in plan([info], settings)]
        return cache[name]

    return get


def _candidates(in_dir: Path) -> list[str]:
    index = in_dir / "candidate-index.tsv"
    if not index.exists():
        return []
    return [ln.split("\t")[0] for ln in index.read_text().splitlines() if ln.strip()]


@pytest.mark.parametrize("name", list(IMAGES))
def test_real_outputs_agree(request: pytest.FixtureRequest, image_runs: Callable[[str], list[RunRecord]],
                            name: str) -> None:
    records = image_runs(name)
    assert records, f"{name}: the suite planned no run"
    unexplained: list[tuple[str, Diff]] = []
    pending: dict[str, list[Diff]] = {}
    compared: set[Release] = set()
    # per release: the platform's answer over every run (accepts = every part kept, every container exited 0)
    # and the suite's MUST rules, from which the suite derives platform_accepts (verdict.platform_accepts)
    oracle_says: dict[Release, list[str]] = {}
    suite_must: dict[Release, list[str]] = {}
    for record in records:
        spec, outcome, ws = record.spec, record.outcome, record.workspace
        if record.skipped and outcome is None:
            continue  # e.g. infer after a training that gave no model: the suite reports that on the training
        assert outcome is not None and ws is not None, f"{name} {spec.kind} at {spec.release}: no run ({record})"
        oracle = get_oracle(ORACLE_FOR[spec.release])
        findings = judge(outcome, spec.release)
        label = f"{name} {spec.kind} {spec.export_format}"
        suite_must.setdefault(spec.release, []).extend(
            f"{f.check.rule} ({spec.id})" for f in findings if f.status is Status.FAILED and f.level is Level.MUST)
        says = oracle_says.setdefault(spec.release, [])
        if outcome.exit_code != 0:  # the platform fails the task on a container error, whatever /out holds
            says.append(f"{spec.kind}: rejects (exit {outcome.exit_code})")
            if not any(f.status is Status.FAILED and f.level is Level.MUST for f in findings):
                unexplained.append((oracle.release, Diff("verdict/container", "platform-rejects",
                                                         f"[{label}] exit {outcome.exit_code}: no MUST failure")))
            continue
        compared.add(spec.release)
        answers: dict[str, str] = {}
        diffs = compare_verdicts(oracle, outcome.out_dir, outcome.shape, outcome.object_type,
                                 _candidates(outcome.in_dir), findings, label,
                                 [str(c) for c in ws.config.get("class_names", [])], answers=answers)
        says += [f"{spec.kind} {part}: {answer}" for part, answer in answers.items()
                 if answer not in ("keeps", "unavailable")]
        unread = tuple(p for part, a in answers.items() if a == "unavailable" for p in GROUPS[part])
        if unread:  # no reader on that release (1.1.0: monitor.txt): its rules cannot be compared
            suite_must[spec.release] = [m for m in suite_must[spec.release] if not m.startswith(unread)]
        bad, known = classify(diffs, {"release": oracle.release, "case": name, "mutation": name})
        unexplained += [(oracle.release, d) for d in bad]
        for k, v in known.items():
            pending.setdefault(k, []).extend(v)
    # every selected family is compared (1.1 cannot run segmentation: session.supports)
    want = {r for r in _families(request.config) if not ("seg" in name and r < Release(2, 1))}
    assert compared == want, f"{name}: compared runs at {sorted(map(str, compared))}, expected {sorted(map(str, want))}"
    for release in sorted(oracle_says):
        says = oracle_says[release]
        suite = platform_accepts(Verdict.NOT_CONFORMANT if suite_must[release] else Verdict.CONFORMANT,
                                 suite_must[release])
        # rejects -> false; keeps everything -> true; accepts and loses data -> the rule's level decides (a loss
        # rated MUST, e.g. MIN-03's wrong selection, makes it false; a SHOULD one, e.g. INF-05, leaves it true)
        rejects = any(": rejects" in s for s in says)
        oracle_accepts = None if says and not rejects else not rejects
        if oracle_accepts is not None and suite is not oracle_accepts:
            unexplained.append((ORACLE_FOR[release], Diff(
                "verdict/platform_accepts", "platform-accepts-differs",
                f"[{name}] the suite's platform_accepts is {suite} (MUST: {suite_must[release] or 'none'}) but the "
                f"platform {'keeps everything' if oracle_accepts else 'says ' + '; '.join(oracle_says[release])}")))
    if unexplained:
        pytest.fail(f"{len(unexplained)} disagreement(s) between the suite's verdict and the platform's on the real "
                    f"/out trees of {name}:\n" + "\n".join(f"  {r}: {d}" for r, d in unexplained), pytrace=False)
    if pending:
        pytest.xfail("known suite differences (allowed.yaml 'pending'): "
                     + "; ".join(f"{k}: {v[0]}" for k, v in pending.items()))
