"""Merging partial reports (pytest-xdist workers) and the one-line compatibility summary."""
from __future__ import annotations

from typing import Any

from ymir_conformance.verdict import merge_reports, summary_line


def part(verdicts: dict[str, tuple[str, list[str]]], runs: list[str], container_runs: int) -> dict[str, Any]:
    rows = [{"release": r, "verdict": v, "must": m, "should": []} for r, (v, m) in verdicts.items()]
    return {"settings": {"profile": "quick"}, "releases": list(verdicts), "container_runs": container_runs,
            "images": [{"image": "img", "image_id": "sha256:ab", "compatibility": rows, "summary": ""}],
            "runs": [{"image": "img", "id": r} for r in runs], "judgements": [{"subject": r} for r in runs]}


def test_worst_verdict_wins_and_rules_are_united() -> None:
    a = part({"2.3": ("conformant", []), "2.5": ("conformant", [])}, ["seg-coco@2.3"], 2)
    b = part({"2.3": ("not conformant", ["TR-12 (seg-coco@2.3)"]), "2.5": ("untested", [])}, ["seg-coco@2.5"], 3)
    merged = merge_reports([a, b])
    rows = {r["release"]: r for r in merged["images"][0]["compatibility"]}
    assert rows["2.3"]["verdict"] == "not conformant" and rows["2.3"]["must"] == ["TR-12 (seg-coco@2.3)"]
    assert rows["2.5"]["verdict"] == "conformant"
    assert merged["container_runs"] == 5 and [r["id"] for r in merged["runs"]] == ["seg-coco@2.3", "seg-coco@2.5"]
    assert merged["images"][0]["summary"] == "conformant on 2.5; rejected by the platform on 2.3 (TR-12)"


def test_a_single_part_is_returned_unchanged() -> None:
    a = part({"2.5": ("conformant", [])}, ["det-voc"], 1)
    assert merge_reports([a]) is a


def test_summary_line_groups_releases_into_ranges() -> None:
    rows = [("1.1", "untested", []), ("2.0", "untested", []), ("2.1", "not conformant", ["TR-12 (x)"]),
            ("2.2", "not conformant", ["TR-12 (x)"]), ("2.3", "not conformant", ["TR-12 (x)"]),
            ("2.4", "conformant", []), ("2.5", "conformant with warnings", [])]
    assert summary_line(rows) == ("conformant on 2.4-2.5; rejected by the platform on 2.1-2.3 (TR-12); untested or "
                                  "incomplete on 1.1-2.0")
    rows[2:5] = [(r, "not conformant", ["IN-11 (x)"]) for r in ("2.1", "2.2", "2.3")]
    rows[5] = ("2.4", "not conformant (strict)", [])
    assert summary_line(rows) == ("conformant on 2.5; accepted by the platform, not conformant (strict: SHOULD "
                                  "findings) on 2.4; accepted by the platform, not conformant on 2.1-2.3 (IN-11); "
                                  "untested or incomplete on 1.1-2.0")


def test_a_run_made_by_two_workers_counts_twice_and_is_named() -> None:
    a = part({"2.5": ("conformant", [])}, ["det-voc", "infer-det-voc"], 2)
    b = part({"2.5": ("conformant", [])}, ["det-voc", "mining-det-voc"], 2)
    for p in (a, b):
        for r in p["runs"]:
            r["attempts"] = [{"exit_code": 0}]
    merged = merge_reports([a, b])
    assert merged["container_runs"] == 4  # what the workers really ran, not the distinct ids
    assert [r["id"] for r in merged["runs"]] == ["det-voc", "infer-det-voc", "mining-det-voc"]
    assert merged["repeated_runs"] == {"det-voc": 2}


def test_a_skipped_run_on_two_workers_is_not_a_repeat() -> None:
    a = part({"2.5": ("conformant", [])}, [], 0)
    b = part({"2.5": ("conformant", [])}, [], 0)
    a["runs"] = [{"image": "img", "id": "det-voc", "skipped": "training was not requested"}]
    b["runs"] = [{"image": "img", "id": "det-voc", "skipped": "training was not requested"}]
    merged = merge_reports([a, b])
    assert merged["repeated_runs"] == {} and len(merged["runs"]) == 1
