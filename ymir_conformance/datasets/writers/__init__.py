"""One serialiser per annotation format, byte-compatible with the platform's exporter (contract §4)."""
from __future__ import annotations

from collections.abc import Sequence

from ..scene import SceneObject

Labelled = Sequence[tuple[int, SceneObject]]
"""The objects of one image that are exported, each with its class id (0-based index in class_names)."""
