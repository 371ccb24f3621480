"""The in-memory picture of one dataset image: its encoded bytes and its ground-truth objects."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

BoolMask = npt.NDArray[np.bool_]

ASSET_EXTS: tuple[str, ...] = ("jpg", "png", "bmp", "unknown")
"""Asset extensions the platform writes (``exporter._asset_file_ext``): the stored type, or literally ``unknown``."""


@dataclass(frozen=True)
class SceneObject:
    """One ground-truth object.

    ``box`` is ``(x, y, w, h)`` with inclusive pixel extents, so ``xmax = x + w - 1`` (contract §4).
    ``mask`` (H x W, bool) is the object's *visible* pixels; ``None`` for a pure detection box.
    ``polygon`` is one flat ``x1, y1, x2, y2, ...`` outline, set only when it describes the mask exactly
    (an unoccluded polygon-shaped object); the COCO writer then exports it instead of an RLE.
    """

    class_name: str
    box: tuple[int, int, int, int]
    mask: BoolMask | None = field(default=None, compare=False, repr=False)
    polygon: list[float] | None = field(default=None, hash=False)  # compared, but a list is not hashable

    def __post_init__(self) -> None:
        x, y, w, h = self.box
        if w < 1 or h < 1 or x < 0 or y < 0:
            raise ValueError(f"box {self.box} must have x, y >= 0 and w, h >= 1")

    @property
    def xmax(self) -> int:
        return self.box[0] + self.box[2] - 1

    @property
    def ymax(self) -> int:
        return self.box[1] + self.box[3] - 1

    @property
    def area(self) -> int:
        """Mask area in pixels; 0 for a pure box (as the platform's ``mask_area``)."""
        return int(np.count_nonzero(self.mask)) if self.mask is not None else 0


@dataclass(frozen=True)
class Scene:
    """One image as the platform stores it: content-addressed by the sha1 of its bytes."""

    name: str  # the "upload" file name, e.g. scene_0007.jpg (single-image infer)
    image_bytes: bytes = field(repr=False)
    ext: str  # 'jpg' | 'png' | 'bmp' | 'unknown'
    width: int
    height: int
    objects: tuple[SceneObject, ...] = ()
    channels: int = 3  # VOC <depth>

    def __post_init__(self) -> None:
        if self.ext not in ASSET_EXTS:
            raise ValueError(f"asset ext {self.ext!r} is not one of {ASSET_EXTS}")

    @cached_property
    def sha1(self) -> str:
        return hashlib.sha1(self.image_bytes).hexdigest()

    @property
    def asset_relpath(self) -> str:
        """``<xx>/<sha1>.<ext>`` with ``xx`` the last two hex chars (contract §3.4)."""
        sha1 = self.sha1
        return f"{sha1[-2:]}/{sha1}.{self.ext}"
