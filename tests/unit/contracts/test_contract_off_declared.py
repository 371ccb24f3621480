"""A training on an export format the image does not declare: its MUST findings count as SHOULD, with the
wording that says what a user meets, on exactly the releases marked, and the verdict follows."""
from __future__ import annotations

from contract_kit import KitFactory, T0, rec
from ymir_conformance.contracts import Level, Status
from ymir_conformance.platform import Release
from ymir_conformance.verdict import Ledger, Verdict

OFF = {"off_declared_on": (Release(2, 5),), "off_declared_format": "coco:raw"}


def crashed(make: KitFactory):  # type: ignore[no-untyped-def]
    kit = make("training", conformant=False)
    kit.monitor(rec(0.1, state=2, ts=T0 + 3))  # no state 4: V1 and MON-07
    kit.log("Traceback (most recent call last):\nValueError: annotation format 'coco' is not supported\n")
    return kit


def test_a_crash_on_an_undeclared_format_is_should_with_the_form_wording(make: KitFactory) -> None:
    kit = crashed(make)
    plain = {f.check.rule: f for f in kit.judge(exit_code=1)}
    assert plain["V1"].level is Level.MUST and plain["MON-07"].level is Level.MUST
    assert plain["TR-01"].status is Status.NOT_EVALUATED
    off = {f.check.rule: f for f in kit.judge(exit_code=1, **OFF)}
    # MON-07 (a stale monitor state) is a consequence of V1's exit: listed under it, at its demoted level
    for rule, status in (("V1", Status.FAILED), ("MON-07", Status.CONSEQUENCE)):
        assert off[rule].status is status and off[rule].level is Level.SHOULD
        assert all(v.level is Level.SHOULD for v in off[rule].violations)
        assert off[rule].violations[0].message.startswith(
            "if a user switches export_format to coco:raw in the form, training fails: ")
    # the output rules cannot apply to a format the image does not read: not "not evaluated" (incomplete)
    assert off["TR-01"].status is Status.NOT_APPLICABLE and "does not declare" in off["TR-01"].reason
    assert not [f for f in off.values() if f.status is Status.NOT_EVALUATED]


def test_only_the_marked_releases_are_demoted(make: KitFactory) -> None:
    kit = crashed(make)
    assert kit.finding("V1", "2.4", exit_code=1, **OFF).level is Level.MUST
    assert kit.finding("V1", "2.5", exit_code=1, **OFF).level is Level.SHOULD


def test_should_rules_keep_their_wording(make: KitFactory) -> None:
    kit = make("training")
    kit.monitor(rec(1.0, state=3, ts=T0 + 9))  # MON-06 (SHOULD): the executor wrote state 3
    [v] = kit.violations("MON-06", **OFF)
    assert v.level is Level.SHOULD and not v.message.startswith("if a user switches")


def test_the_verdict_counts_them_as_warnings(make: KitFactory) -> None:
    kit = crashed(make)
    r = Release(2, 5)
    off, plain = Ledger(releases=(r,)), Ledger(releases=(r,))
    off.add("img", "coco", "lifecycle", {r: kit.judge(exit_code=1, **OFF)})
    plain.add("img", "coco", "lifecycle", {r: kit.judge(exit_code=1)})
    assert off.verdict("img", r)[0] is Verdict.CONFORMANT_WITH_WARNINGS
    assert plain.verdict("img", r)[0] is Verdict.NOT_CONFORMANT
