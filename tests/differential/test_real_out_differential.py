"""Verdict differential on real /out trees: fixture images run by the suite, judged by the platform's own code.

Each image below is run once (module-scoped cache; quick profile, the Conductor and plan of the suite, as
tests/integration/test_gallery.py does) for the release families 2.3 (2.1-2.3 inputs, protocol 1.1.0) and 1.1
(protocol 0.0.0: the image writes result.yaml ``model``/``map`` and the ``annotations`` key). Every run's /out goes
to the platform's post-processing of that release (oracle.py ``judge``: 2.3.0 for the 2.3 runs, 1.1.0 for the 1.1
runs) and to the suite's judge on that release; per part they must agree the way test_verdict_differential.py
requires (platform rejects <=> suite MUST in that group; platform accepts and loses data => the suite reports it).
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
from ymir_conformance.session import Conductor, RunRecord, plan

from .kit import Diff, classify, get_oracle, releases
from .test_verdict_differential import compare_verdicts

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
    for record in records:
        spec, outcome, ws = record.spec, record.outcome, record.workspace
        if record.skipped and outcome is None:
            continue  # e.g. infer after a training that gave no model: the suite reports that on the training
        assert outcome is not None and ws is not None, f"{name} {spec.kind} at {spec.release}: no run ({record})"
        oracle = get_oracle(ORACLE_FOR[spec.release])
        findings = judge(outcome, spec.release)
        label = f"{name} {spec.kind} {spec.export_format}"
        if outcome.exit_code != 0:  # the platform fails the task on a container error, whatever /out holds
            if not any(f.status is Status.FAILED and f.level is Level.MUST for f in findings):
                unexplained.append((oracle.release, Diff("verdict/container", "platform-rejects",
                                                         f"[{label}] exit {outcome.exit_code}: no MUST failure")))
            continue
        compared.add(spec.release)
        diffs = compare_verdicts(oracle, outcome.out_dir, outcome.shape, outcome.object_type,
                                 _candidates(outcome.in_dir), findings, label,
                                 [str(c) for c in ws.config.get("class_names", [])])
        bad, known = classify(diffs, {"release": oracle.release, "case": name, "mutation": name})
        unexplained += [(oracle.release, d) for d in bad]
        for k, v in known.items():
            pending.setdefault(k, []).extend(v)
    # every selected family is compared (1.1 cannot run segmentation: session.supports)
    want = {r for r in _families(request.config) if not ("seg" in name and r < Release(2, 1))}
    assert compared == want, f"{name}: compared runs at {sorted(map(str, compared))}, expected {sorted(map(str, want))}"
    if unexplained:
        pytest.fail(f"{len(unexplained)} disagreement(s) between the suite's verdict and the platform's on the real "
                    f"/out trees of {name}:\n" + "\n".join(f"  {r}: {d}" for r, d in unexplained), pytrace=False)
    if pending:
        pytest.xfail("known suite differences (allowed.yaml 'pending'): "
                     + "; ".join(f"{k}: {v[0]}" for k, v in pending.items()))
