"""Where files go: host paths under the folder mounted as /in, and the container paths the index files name."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..platform import Release
from .encode import pil_ext
from .scene import Scene

IN_ROOT = "/in"
COCO_JSON_NAME = "coco-annotations.json"
LEGACY_INDEXED_EXTS = ("jpg", "jpeg", "png")
"""ymir 1.1 listed only these in its index files (``data_exporter._generate_asset_index_file``)."""


@dataclass(frozen=True)
class Layout:
    """Path conventions of one release: 2.x ``<xx>/<sha1>.<ext>``; 1.1 ``./<xx>/<sha1>.<PIL ext>``."""

    release: Release

    @cached_property
    def legacy(self) -> bool:  # cached: asked several times per exported image
        return self.release < Release(2, 0)

    def asset_ext(self, scene: Scene) -> str:
        return pil_ext(scene.image_bytes) if self.legacy else scene.ext

    def asset_relpath(self, scene: Scene) -> str:
        """Host path relative to ``<in>/assets``."""
        return f"{scene.sha1[-2:]}/{scene.sha1}.{self.asset_ext(scene)}"

    def indexed(self, scene: Scene) -> bool:
        return not self.legacy or self.asset_ext(scene) in LEGACY_INDEXED_EXTS

    def container_path(self, top: str, relpath: str) -> str:
        """``/in/<top>/<relpath>``; 1.1 keeps a ``./`` component (``/in/assets/./ab/...``)."""
        return f"{IN_ROOT}/{top}/./{relpath}" if self.legacy else f"{IN_ROOT}/{top}/{relpath}"

    def candidate_path(self, relpath: str) -> str:
        """A candidate's ``/in/assets/<relpath>``: without ``./`` even on 1.1, whose ``infer._prepare_assets``
        builds it with ``os.path.relpath`` (only the 1.1 training indexes keep the ``./``)."""
        return f"{IN_ROOT}/assets/{relpath}"

    def annotation_relpath(self, scene: Scene, suffix: str) -> str:
        return f"{scene.sha1[-2:]}/{scene.sha1}.{suffix}"
