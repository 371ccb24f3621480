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


class UnsafeOutput(ConformanceError):
    """Something the image wrote was refused by the guarded reader (:mod:`ymir_conformance.guard`).

    ``problem`` completes the sentence "<file> ...": "is a symlink (to '/etc/shadow'); ...", "is a FIFO (named
    pipe), not a regular file", "is 3 GiB, over the 1 MiB this suite reads of such a file". The check that owns
    the file reports it under its rule; the suite never crashes on it.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class ShouldViolationWarning(pytest.PytestWarning):
    """A SHOULD-level rule of the contract is broken: the platform copes, but users or other releases may not."""
