"""IN-11, IN-12, IN-13 and LC-04: judged from the input audit (what the container opened under /in)."""
from __future__ import annotations

from typing import Any

from contract_kit import Kit, KitFactory
from ymir_conformance.audit import WatchResult, summarize
from ymir_conformance.contracts import Level, Status

RULES = ("IN-11", "IN-12", "IN-13", "LC-04")


def audited(kit: Kit, opened: set[str], listed: set[str] | None = None, complete: bool = True) -> dict[str, Any]:
    """The summary the session would record had the container opened ``opened`` and listed ``listed``."""
    result = WatchResult(audited=True, complete=complete, opened=set(opened), listed=set(listed or ()),
                         problem="" if complete else "the kernel dropped events")
    return summarize(result, kit.in_dir, None, kit.shape)


def index_paths(kit: Kit, name: str) -> list[list[str]]:
    return [ln.split("\t") for ln in (kit.in_dir / name).read_text().splitlines() if ln]


def everything(kit: Kit) -> set[str]:
    """What a conformant run opens: the index files, every listed image and annotation, the model."""
    opened = {"/in/env.yaml", "/in/config.yaml"}
    for name in ("train-index.tsv", "val-index.tsv", "candidate-index.tsv"):
        if (kit.in_dir / name).exists():
            opened.add(f"/in/{name}")
            for cols in index_paths(kit, name):
                opened.update(cols)
    if kit.shape.run_mining or kit.shape.run_infer:
        opened.add("/in/models/epoch20/epoch20.pt")
    return opened


def statuses(kit: Kit, release: str = "2.5", **kw: Any) -> dict[str, Status]:
    return {f.check.rule: f.status for f in kit.judge(release, **kw) if f.check.rule in RULES}


def test_conformant_training_passes_and_counts(make: KitFactory) -> None:
    kit = make("training")
    audit = audited(kit, everything(kit))
    assert audit["annotations"] == {"opened": 2, "listed": 2, "missed": []}
    assert audit["assets"]["opened"] == audit["assets"]["listed"] == 3
    assert not audit["assets_listed"] and audit["decoys"]["opened"] == 0
    assert "/in/train-index.tsv" in audit["index_files"]["opened"]
    assert statuses(kit, inputs_opened=audit) == {"IN-11": Status.PASSED, "IN-12": Status.NOT_APPLICABLE,
                                                  "IN-13": Status.NOT_APPLICABLE, "LC-04": Status.PASSED}


def test_in_11_training_that_opens_no_annotation_fails(make: KitFactory) -> None:
    kit = make("training")
    opened = {p for p in everything(kit) if not p.startswith("/in/annotations/")}
    audit = audited(kit, opened)
    assert audit["annotations"] == {"opened": 0, "listed": 2, "missed": ["/in/annotations/x.xml",
                                                                          "/in/annotations/y.xml"]}
    finding = kit.finding("IN-11", inputs_opened=audit)
    assert finding.status is Status.FAILED and finding.level is Level.MUST
    (v,) = finding.violations
    assert "train annotations 0/1 opened" in v.found and "val annotations 0/1" in v.found
    assert "export_format" in v.found


def test_in_11_judges_the_training_split_alone(make: KitFactory) -> None:
    """Validation files opened say nothing about what the model trained on (issue 18)."""
    kit = make("training")
    train = {c[1] for c in index_paths(kit, "train-index.tsv")}
    audit = audited(kit, everything(kit) - train)
    assert audit["train_annotations"]["opened"] == 0 and audit["val_annotations"]["opened"] == 1
    assert audit["annotations"]["opened"] == 1  # the total alone would have passed
    (v,) = kit.finding("IN-11", inputs_opened=audit).violations
    assert f"train annotations 0/{len(train)} opened" in v.found and "val annotations 1/1" in v.found


def test_in_11_training_on_the_predictions_fails_and_says_so(make: KitFactory) -> None:
    kit = make("training")
    (kit.in_dir / "predictions").mkdir()
    lines = index_paths(kit, "train-index.tsv")
    preds = [f"/in/predictions/{c[1].rsplit('/', 1)[-1]}" for c in lines]
    (kit.in_dir / "pred-train-index.tsv").write_text("".join(f"{c[0]}\t{p}\n" for c, p in zip(lines, preds)))
    opened = {p for p in everything(kit) if not p.startswith("/in/annotations/") and p != "/in/train-index.tsv"}
    audit = audited(kit, opened | {"/in/pred-train-index.tsv", *preds})
    assert audit["predictions"]["opened"] == len(set(preds)) + 1
    finding = kit.finding("IN-11", inputs_opened=audit)
    assert finding.status is Status.FAILED and finding.check.basis == "integrity"
    assert "predictions" in finding.violations[0].message and "/in/pred-train-index.tsv" in finding.violations[0].found
    # reading the predictions as well as the labels is the image's choice
    assert kit.finding("IN-11", inputs_opened=audited(kit, everything(kit) | set(preds))).status is Status.PASSED


def test_in_11_counts_the_training_images_without_judging_them(make: KitFactory) -> None:
    kit = make("training")
    images = {c[0] for c in index_paths(kit, "train-index.tsv")}
    audit = audited(kit, everything(kit) - images)
    assert audit["train_assets"]["opened"] == 0 and audit["train_assets"]["listed"] == len(images)
    assert kit.finding("IN-11", inputs_opened=audit).status is Status.PASSED


def test_in_11_partial_reading_is_the_images_choice(make: KitFactory) -> None:
    kit = make("training")
    opened = everything(kit) - {"/in/annotations/y.xml"}
    assert kit.finding("IN-11", inputs_opened=audited(kit, opened)).status is Status.PASSED


def test_in_12_a_candidate_never_opened_is_a_should(make: KitFactory) -> None:
    kit = make("infer")
    skipped = kit.candidates[-1]
    audit = audited(kit, everything(kit) - {skipped})
    assert audit["candidates"] == {"opened": 2, "listed": 3, "missed": [skipped]}
    finding = kit.finding("IN-12", inputs_opened=audit)
    assert finding.status is Status.FAILED and finding.level is Level.SHOULD
    (v,) = finding.violations
    assert v.lost == 1 and skipped in v.found


def test_in_13_infer_without_opening_the_model_fails(make: KitFactory) -> None:
    kit = make("mining")
    audit = audited(kit, everything(kit) - {"/in/models/epoch20/epoch20.pt"})
    assert audit["models"]["opened"] == 0 and audit["models"]["listed"] == 1
    finding = kit.finding("IN-13", inputs_opened=audit)
    assert finding.status is Status.FAILED and finding.level is Level.MUST
    assert statuses(kit, inputs_opened=audited(kit, everything(kit)))["IN-13"] is Status.PASSED


def test_in_13_legacy_flat_package_counts_by_file_name(make: KitFactory) -> None:
    """1.1 packages are extracted at /in/models/<file> while the config says <stage>/<file> (IN-04)."""
    kit = make("infer")
    opened = everything(kit) - {"/in/models/epoch20/epoch20.pt"} | {"/in/models/epoch20.pt"}
    assert kit.finding("IN-13", inputs_opened=audited(kit, opened)).status is Status.PASSED


def test_lc_04_listing_the_assets_folder_is_a_should_on_2x(make: KitFactory) -> None:
    kit = make("training")
    audit = audited(kit, everything(kit), listed={"/in/assets", "/in/assets/ab"})
    assert audit["assets_listed"] and audit["listed_dirs"] == ["/in/assets", "/in/assets/ab"]
    finding = kit.finding("LC-04", inputs_opened=audit)
    assert finding.status is Status.FAILED and finding.level is Level.SHOULD
    assert "listed /in/assets" in finding.violations[0].found
    assert kit.finding("LC-04", "1.1", inputs_opened=audit).status is Status.NOT_APPLICABLE
    # listing /in/models (finding a legacy model file, IN-04) is fine
    other = audited(kit, everything(kit), listed={"/in/models", "/in/models/epoch20"})
    assert kit.finding("LC-04", inputs_opened=other).status is Status.PASSED


def test_lc_04_reading_a_decoy_fails_even_without_a_listing_and_after_a_failed_run(make: KitFactory) -> None:
    kit = make("training")
    decoy = "/in/assets/zz/" + "f" * 40 + ".jpg"
    audit = audited(kit, everything(kit) | {decoy})
    assert audit["decoys"]["opened"] == 1 and audit["decoys"]["examples"] == [decoy]
    (v,) = kit.violations("LC-04", inputs_opened=audit, exit_code=1)
    assert decoy in v.found and "1 image(s)" in v.found


def test_not_audited_runs_are_not_applicable_never_failed(make: KitFactory) -> None:
    kit = make("infer")
    for audit in ({}, {"audited": False, "complete": False, "problem": "inotify refused a watch"}):
        assert set(statuses(kit, inputs_opened=audit).values()) == {Status.NOT_APPLICABLE}


def test_an_incomplete_audit_judges_only_what_was_seen(make: KitFactory) -> None:
    """Dropped events (queue overflow) make 'not opened' unknowable; a listing seen is still a listing."""
    kit = make("infer")
    audit = audited(kit, set(), listed={"/in/assets"}, complete=False)
    got = statuses(kit, inputs_opened=audit)
    assert got["IN-12"] is Status.NOT_APPLICABLE and got["IN-13"] is Status.NOT_APPLICABLE
    assert got["LC-04"] is Status.FAILED


def test_failed_runs_are_not_judged_for_coverage(make: KitFactory) -> None:
    kit = make("training")
    audit = audited(kit, set())
    assert kit.finding("IN-11", inputs_opened=audit, exit_code=1).status is Status.NOT_EVALUATED
