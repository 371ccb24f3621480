"""Synthetic datasets, exported into /in exactly as the YMIR platform does (contract §3, §4).

``generate_scenes`` streams deterministic images with ground truth; ``export_training_set`` and
``export_candidates`` write a workspace's assets, annotations and index files.
"""
from __future__ import annotations

from .candidates import export_candidates
from .edge_cases import EDGE_CLASS_NAMES, corrupt_scene, edge_case_scenes
from .export import ExportSummary, export_training_set
from .formats import ANNOTATION_FORMATS, DEFAULT_EXPORT_FORMAT, formats_for, parse_export_format
from .generate import generate_scenes
from .palette import class_colour
from .profiles import PROFILES, Profile
from .scene import Scene, SceneObject

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
