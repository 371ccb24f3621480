"""The contract as checks, one module per area. Importing a module registers its checks in ``REGISTRY``."""
from __future__ import annotations

import importlib

from .base import REGISTRY, Area, Check, Finding, Level, RunView, Status, Violation, judge, judge_releases

AREA_MODULES = ("lifecycle", "monitor", "training", "infer", "mining", "ground_truth", "inputs")

__all__ = ["REGISTRY", "Area", "Check", "Finding", "Level", "RunView", "Status", "Violation", "judge",
           "judge_releases", "load_all"]


def load_all() -> None:
    """Import every area module once (idempotent), so that ``REGISTRY`` holds the whole catalogue."""
    for name in AREA_MODULES:
        importlib.import_module(f"{__name__}.{name}")
