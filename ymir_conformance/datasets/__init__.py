"""Synthetic datasets, exported into /in exactly as the YMIR platform does (contract §3, §4).

``generate_scenes`` streams deterministic images with ground truth; ``export_training_set`` and
``export_candidates`` write a workspace's assets, annotations and index files.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .formats import ANNOTATION_FORMATS, DEFAULT_EXPORT_FORMAT, formats_for, parse_export_format
from .palette import class_colour
from .profiles import PROFILES, Profile

if TYPE_CHECKING:
    from .candidates import export_candidates
    from .edge_cases import EDGE_CLASS_NAMES, corrupt_scene, edge_case_scenes
    from .export import ExportSummary, export_training_set
    from .generate import generate_scenes
    from .scene import Scene, SceneObject

# numpy, Pillow and pycocotools are imported when data are generated, not when a session plans its runs (or
# pytest collects the suite): these names load their module on first use (PEP 562)
_LAZY = {"export_candidates": "candidates", "EDGE_CLASS_NAMES": "edge_cases", "corrupt_scene": "edge_cases",
         "edge_case_scenes": "edge_cases", "ExportSummary": "export", "export_training_set": "export",
         "generate_scenes": "generate", "Scene": "scene", "SceneObject": "scene"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ANNOTATION_FORMATS",
    "DEFAULT_EXPORT_FORMAT",
    "EDGE_CLASS_NAMES",
    "PROFILES",
    "ExportSummary",
    "Profile",
    "Scene",
    "SceneObject",
    "class_colour",
    "corrupt_scene",
    "edge_case_scenes",
    "export_candidates",
    "export_training_set",
    "formats_for",
    "generate_scenes",
    "parse_export_format",
]
