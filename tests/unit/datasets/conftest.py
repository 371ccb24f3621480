"""Shared scenes for the dataset tests (small, deterministic, generated once per session)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ymir_conformance.datasets import EDGE_CLASS_NAMES, Scene, edge_case_scenes, generate_scenes
from ymir_conformance.model import ObjectType

CLASS_NAMES = ("cat", "dog", "person")


@pytest.fixture(scope="session")
def class_names() -> tuple[str, ...]:
    return CLASS_NAMES


@pytest.fixture(scope="session")
def det_scenes() -> list[Scene]:
    return list(generate_scenes(11, 12, ObjectType.DETECTION, CLASS_NAMES, image_exts=("jpg", "png", "bmp")))


@pytest.fixture(scope="session")
def inst_scenes() -> list[Scene]:
    return list(generate_scenes(12, 12, ObjectType.INSTANCE_SEGMENTATION, CLASS_NAMES))


@pytest.fixture(scope="session")
def sem_scenes() -> list[Scene]:
    return list(generate_scenes(13, 8, ObjectType.SEMANTIC_SEGMENTATION, CLASS_NAMES))


@pytest.fixture(scope="session")
def edge_det_scenes() -> list[Scene]:
    return edge_case_scenes(5, ObjectType.DETECTION, EDGE_CLASS_NAMES)


@pytest.fixture(scope="session")
def edge_inst_scenes() -> list[Scene]:
    return edge_case_scenes(6, ObjectType.INSTANCE_SEGMENTATION, EDGE_CLASS_NAMES)


@pytest.fixture
def host_path(tmp_path: Path) -> Callable[[Path, str], Path]:
    """Map an absolute container path (``/in/...``) to the host file under an export folder."""

    def resolve(in_dir: Path, container_path: str) -> Path:
        assert container_path.startswith("/in/"), container_path
        return in_dir / container_path[len("/in/") :]

    return resolve
