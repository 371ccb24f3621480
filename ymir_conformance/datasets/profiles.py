"""Dataset sizes for a certification run: quick (smoke), standard, certify (standard + edge cases)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    train: int
    val: int
    candidates: int
    edge_cases: bool = False  # add ``edge_case_scenes`` to train and candidates

    @property
    def total(self) -> int:
        return self.train + self.val + self.candidates


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("quick", train=24, val=8, candidates=8),
        Profile("standard", train=200, val=50, candidates=50),
        Profile("certify", train=200, val=50, candidates=50, edge_cases=True),
    )
}
