"""The pytest11 entry point (``-p no:ymir_conformance`` turns it off): the ``--ymir-*`` options, their validation,
the markers and the ``ymir`` fixture, and nothing heavy.

Without ``--image`` (or the ``ymir_images`` ini value) that is all: a normal pytest run, ``pytest --help``
included, imports neither the Docker client nor numpy/Pillow. With images, the session plugin (plugin.py: the
hooks, the conductor, the engine and the data generators) is imported and registered from pytest_configure.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .errors import SettingsError
from .options import SETTINGS_KEY, add_options, resolve

if TYPE_CHECKING:
    from .plugin import YmirSession

SESSION_KEY = pytest.StashKey["YmirSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a Docker engine with an NVIDIA GPU runtime (skipped elsewhere)")
    config.addinivalue_line("markers", "ymir_area(name): the contract area a conformance test judges")
    try:
        settings = resolve(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    if not settings.images:
        return
    from .plugin import start_session  # the heavy part: only when there is an image to certify

    start_session(config, settings)


@pytest.fixture
def ymir(request: pytest.FixtureRequest) -> YmirSession:
    """The ymir-conformance session: run specs, judge areas (only with --image)."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("ymir-conformance needs --image=REPO:TAG")
    return session


__all__ = ["ymir", "SETTINGS_KEY", "SESSION_KEY"]
