"""Every rule has a basis (platform / integrity / operations) and a reason (issue 18), kept in one table."""
from __future__ import annotations

from ymir_conformance.__main__ import negative_rules
from ymir_conformance.contracts import REGISTRY, load_all
from ymir_conformance.contracts.basis import CATALOGUE, Basis, basis_of
from ymir_conformance.image import IMAGE_CHECKS


def all_rules() -> set[str]:
    load_all()
    return {*REGISTRY, *IMAGE_CHECKS, *negative_rules()}


def test_every_rule_has_a_basis_and_a_reason() -> None:
    missing = sorted(all_rules() - set(CATALOGUE))
    assert not missing, f"add these rules to ymir_conformance/contracts/basis.py CATALOGUE: {missing}"
    for rule, (basis, reason) in CATALOGUE.items():
        assert isinstance(basis, Basis), rule
        assert len(reason) > 30 and reason == reason.strip(), f"{rule}: say what happens when it is broken"


def test_no_stale_lines() -> None:
    assert not sorted(set(CATALOGUE) - all_rules())


def test_the_issue_examples() -> None:
    for rule in ("IN-03", "IN-11", "IN-12", "IN-13", "MIN-07"):
        assert basis_of(rule) is Basis.INTEGRITY, rule
    for rule in ("LC-11", "LC-12", "LC-13", "LC-15", "BUD-01", "BUD-02", "BUD-03", "BUD-04"):
        assert basis_of(rule) is Basis.OPERATIONS, rule
    for rule in ("TR-01", "TR-02", "INF-04", "MIN-01", "MIN-02", "MIN-03", "V1", "MON-01"):
        assert basis_of(rule) is Basis.PLATFORM, rule
    assert REGISTRY["IN-11"].basis is Basis.INTEGRITY  # also on the subclass the audit rules use
    assert basis_of("XX-99") is Basis.PLATFORM  # unknown: the conservative answer
