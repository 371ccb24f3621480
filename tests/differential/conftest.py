"""The differential layer: the platform's own code (PyPI ymir-cmd, one venv per release) as the oracle."""
from __future__ import annotations

import pytest

from .kit import releases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``oracle_release``. A test module may define ``oracle_params(function_name, releases)``
    returning ``(argnames, [pytest.param(...)])`` with ``oracle_release`` among the names: only the combinations a
    release has are then generated (e.g. no segmentation on 1.1), so nothing is skipped for want of a function."""
    if "oracle_release" not in metafunc.fixturenames:
        return
    chosen = releases(metafunc.config)
    own = getattr(metafunc.module, "oracle_params", None)
    spec = own(metafunc.function.__name__, chosen) if own else None
    if spec is None:
        metafunc.parametrize("oracle_release", chosen)
    else:
        argnames, params = spec
        metafunc.parametrize(argnames, params)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "differential" in item.path.parts:
            item.add_marker(pytest.mark.differential)
