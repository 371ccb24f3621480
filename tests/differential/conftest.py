"""The differential layer: the platform's own code (PyPI ymir-cmd, one venv per release) as the oracle."""
from __future__ import annotations

import pytest

from .kit import releases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "oracle_release" in metafunc.fixturenames:
        metafunc.parametrize("oracle_release", releases(metafunc.config))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "differential" in item.path.parts:
            item.add_marker(pytest.mark.differential)
