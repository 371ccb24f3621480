from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from contract_kit import SHAPES, Kit, KitFactory, make_kit
from ymir_conformance.model import ObjectType

__all__ = ["KitFactory", "make"]


@pytest.fixture
def make(tmp_path: Path) -> KitFactory:
    """make("training", ObjectType.DETECTION, release="2.5") -> a fresh workspace under tmp_path."""
    counter = itertools.count()

    def factory(shape: str = "training", object_type: ObjectType = ObjectType.DETECTION, release: str = "2.5",
                gpu_id: str = "0", conformant: bool = True) -> Kit:
        kit = make_kit(tmp_path / f"run{next(counter)}", SHAPES[shape], object_type, release, gpu_id)
        return kit.conformant(release) if conformant else kit

    return factory
