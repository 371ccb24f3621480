"""The input-space search (``--ymir-fuzz=N``, ``--ymir-fuzz-training=M``; collected only when asked for).

``test_fuzz_candidates[image]`` runs the image's mining+infer (or infer, or mining) on up to N generated candidate
sets with one trained model; ``test_fuzz_training[image]`` trains on up to M generated training sets. A crash or
a MUST finding on an input fails the test, which names the minimal failing input hypothesis shrank it to.
"""
from __future__ import annotations

from typing import Any

import pytest

from ymir_conformance.plugin import YmirSession


def test_fuzz_candidates(ymir: YmirSession, ymir_fuzz: Any, request: pytest.FixtureRequest) -> None:
    """V1, INF-, MIN-: infer and mining cope with every image the platform can send (modes, sizes, EXIF)."""
    ymir.judge_fuzz(ymir_fuzz, request.node)


def test_fuzz_training(ymir: YmirSession, ymir_fuzz: Any, request: pytest.FixtureRequest) -> None:
    """V1, TR-: training copes with every training set the platform can send, or refuses it cleanly."""
    ymir.judge_fuzz(ymir_fuzz, request.node)
