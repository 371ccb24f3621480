"""Every fixture image is caught by exactly the rules it breaks, and the references by none.

The gallery files (fixtures/executors/{broken,environment}/gallery.yaml) declare, per image, the task shapes to
run and the expected outcome: the MUST rules that must fail (and no other MUST rule may), SHOULD rules that
must be reported, and ``consequences``: rules listed under V1 as consequences of the same failed exit (exactly
those; issue 16 "one cause, one MUST"). ``expect.by_release`` gives expectations per platform release range (e.g. ``"2.1-2.3"``).
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from ymir_conformance.contracts.base import Level, Status, judge
from ymir_conformance.fixture_images import GALLERY_FILES, load_gallery
from ymir_conformance.hyper import parse_sets
from ymir_conformance.options import PROFILE_BUDGETS, Budget, Settings
from ymir_conformance.platform import LATEST, Release, ReleaseRange
from ymir_conformance.conductor import Conductor
from ymir_conformance.session import plan

ROOT = Path(__file__).resolve().parents[2] / "fixtures" / "executors"
REFERENCES = ["reference-det", "reference-semseg", "reference-instseg", "reference-multi"]


def gallery() -> list[Any]:
    params = []
    for rel in GALLERY_FILES:
        prefix = rel.split("/")[0]
        for entry in load_gallery(ROOT, rel):
            params.append(pytest.param(f"{prefix}-{entry['name']}", entry, id=f"{prefix}-{entry['name']}"))
    return params


def outcome_rules(cl: docker.DockerClient, tag: str, tmp_path: Path, entry: dict[str, Any],
                  releases: tuple[Release, ...]) -> dict[Release, tuple[set[str], set[str], set[str]]]:
    """Run the image like the suite does and return, per release, the (MUST, SHOULD) rule ids that failed and
    the rules listed as consequences of a failed exit (Status.CONSEQUENCE)."""
    opts = entry.get("settings", {})
    base = PROFILE_BUDGETS["quick"]
    budget = Budget(total_s=float(opts.get("budget_total_s", base.total_s)),
                    first_progress_s=float(opts.get("budget_first_progress_s", base.first_progress_s)),
                    heartbeat_s=float(opts.get("budget_heartbeat_s", base.heartbeat_s)))
    tasks = tuple(entry.get("tasks", ["training"]))
    settings = Settings(images=(tag,), profile="quick", tasks=tasks, budget=budget, workdir=tmp_path,
                        releases=releases, hyper_params=parse_sets(opts.get("set"), f"{tag} settings.set"))
    conductor = Conductor(cl, settings, tmp_path, uuid.uuid4().hex[:12])
    info = conductor.info(tag)
    specs = plan([info], settings)
    result: dict[Release, tuple[set[str], set[str], set[str]]] = {r: (set(), set(), set()) for r in releases}
    for release in releases:
        for f in info.findings(release):
            if f.status is Status.FAILED:
                result[release][0 if f.level is Level.MUST else 1].add(f.check.rule)
    for spec in specs:
        record = conductor.get(spec)
        if record.outcome is None:
            continue
        for release in releases:
            for f in judge(record.outcome, release):
                if f.status is Status.FAILED:
                    result[release][0 if f.level is Level.MUST else 1].add(f.check.rule)
                elif f.status is Status.CONSEQUENCE:
                    result[release][2].add(f.check.rule)
    return result


@pytest.mark.parametrize(("name", "entry"), gallery())
def test_gallery_image_is_caught_by_exactly_its_rules(docker_client: docker.DockerClient, fixture_image: Any,
                                                      tmp_path: Path, name: str, entry: dict[str, Any]) -> None:
    tag = fixture_image(name)
    expect = entry.get("expect") or {}
    by_release: dict[Release, dict[str, Any]] = {LATEST: expect}
    for span, exp in (expect.get("by_release") or {}).items():
        for release in ReleaseRange.parse(span).releases():
            by_release[release] = exp
    found = outcome_rules(docker_client, tag, tmp_path, entry, tuple(sorted(by_release)))
    for release, expect in by_release.items():
        must, should, consequences = found[release]
        want_must = set(expect.get("must") or [])
        want_should = set(expect.get("should") or [])
        assert must == want_must, (f"{name} on platform {release}: MUST rules failed {sorted(must)}, expected exactly "
                                   f"{sorted(want_must)}")
        assert want_should <= should, (f"{name} on platform {release}: SHOULD rules failed {sorted(should)}, expected "
                                       f"at least {sorted(want_should)}")
        want_consequences = set(expect.get("consequences") or [])
        assert consequences == want_consequences, (
            f"{name} on platform {release}: rules listed under V1 as consequences {sorted(consequences)}, expected "
            f"exactly {sorted(want_consequences)}")


@pytest.mark.parametrize("name", REFERENCES)
def test_reference_images_trip_nothing(docker_client: docker.DockerClient, fixture_image: Any, tmp_path: Path,
                                       name: str) -> None:
    tag = fixture_image(name)
    entry = {"tasks": ["training", "infer", "mining", "mining+infer"]}
    found = outcome_rules(docker_client, tag, tmp_path, entry, (LATEST,))
    assert found[LATEST] == (set(), set(), set()), f"{name} broke rules: {found[LATEST]}"


def test_export_format_alias_is_trained_on_det_voc(docker_client: docker.DockerClient, fixture_image: Any,
                                                   tmp_path: Path) -> None:
    """The template's `voc:raw` is the alias of det-voc: the quick profile trains on det-voc (not det-ark) and
    passes the template's own value through to config.yaml, with nothing to tell the author."""
    from ymir_conformance.model import ObjectType, Task
    from ymir_conformance.session import format_notes

    tag = fixture_image("broken-export-format-alias")
    settings = Settings(images=(tag,), profile="quick", tasks=("training",), workdir=tmp_path)
    conductor = Conductor(docker_client, settings, tmp_path, uuid.uuid4().hex[:12])
    info = conductor.info(tag)
    assert (info.template(ObjectType.DETECTION, Task.TRAINING) or {}).get("export_format") == "voc:raw"
    [spec] = plan([info], settings)
    assert (spec.export_format, spec.export_format_value) == ("det-voc", "voc:raw")
    assert format_notes(info, settings.releases) == []
