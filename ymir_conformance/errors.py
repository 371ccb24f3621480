"""Every exception and warning ymir-conformance raises, in one place.

Messages are meant for an image author or a CI maintainer: they say what went wrong, where, and what to do.
"""
from __future__ import annotations

import pytest


class ConformanceError(Exception):
    """Base of every error raised by ymir-conformance itself (never by the image under test)."""


class DockerUnavailable(ConformanceError):
    """No Docker engine answers. Run ``scripts/bootstrap`` (it installs and starts one) or set DOCKER_HOST."""


class ImageNotFound(ConformanceError):
    """The image named with ``--image`` is not present in the engine (nothing is ever pulled)."""


class WorkspaceError(ConformanceError):
    """An ``/in`` workspace could not be built (a bug in ymir-conformance or a bad option)."""


class SettingsError(ConformanceError):
    """A ``--ymir-*`` option or ini value is invalid; raised as ``pytest.UsageError`` by the plugin."""


class ShouldViolationWarning(pytest.PytestWarning):
    """A SHOULD-level rule of the contract is broken: the platform copes, but users or other releases may not."""
