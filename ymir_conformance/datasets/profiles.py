"""Dataset sizes for a certification run: quick (smoke), standard (+ a test split), certify (standard + edge cases).

Every profile trains on a selection of the dataset's labels (``workspace.CLASS_NAMES`` of ``LABEL_NAMES``), as the
platform does; ``test`` images go to the dataset's test split, which the platform exports into ``test-index.tsv``
(and ``pred-test-index.tsv``) of a training's /in, though no executor is told to read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    train: int
    val: int
    candidates: int
    test: int = 0  # the training dataset's test split (2.x releases)
    edge_cases: bool = False  # add ``edge_case_scenes`` to train and candidates

    @property
    def total(self) -> int:
        return self.train + self.val + self.test + self.candidates


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("quick", train=24, val=8, candidates=12),
        Profile("standard", train=200, val=50, candidates=50, test=20),
        Profile("certify", train=200, val=50, candidates=50, test=20, edge_cases=True),
    )
}
