"""The one COCO JSON for all splits (contract §4.4), built incrementally and written once at the end."""
from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..scene import BoolMask, Scene, SceneObject
from . import Labelled

DATE_CAPTURED = "2023-01-01 00:00:00"
"""The platform writes the asset's import time; a fixed value keeps exports byte-stable."""
CONFIDENCE = -1.0


def encode_rle(mask: BoolMask) -> dict[str, Any]:
    """pycocotools RLE with the counts as a ``str`` (as the platform stores it)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    counts = rle["counts"]
    return {"counts": counts.decode("ascii") if isinstance(counts, bytes) else counts, "size": [int(v) for v in rle["size"]]}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def segmentation_of(obj: SceneObject) -> tuple[dict[str, Any] | list[list[int | float]], int]:
    """``(segmentation, iscrowd)``: a single polygon if the object has one, else RLE for a mask, else ``{}``."""
    if obj.polygon is not None:
        return [[_number(v) for v in obj.polygon]], 0
    if obj.mask is not None:
        return encode_rle(obj.mask), 1
    return {}, 0


@dataclass(frozen=True, slots=True)
class _ImageMeta:
    """What the COCO file needs of a scene, so that image bytes and masks are not kept alive."""

    ext: str
    width: int
    height: int


class CocoBuilder:
    """Collect images and objects in any order; ``render`` sorts images by sha1 as the platform does."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self._class_names = tuple(class_names)
        self._images: dict[str, tuple[_ImageMeta, list[dict[str, Any]]]] = {}

    def add(self, scene: Scene, labelled: Labelled) -> None:
        annotations: list[dict[str, Any]] = []
        for class_id, obj in labelled:
            segmentation, iscrowd = segmentation_of(obj)
            annotations.append(
                {
                    "category_id": class_id,
                    "iscrowd": iscrowd,
                    "bbox": list(obj.box),
                    "confidence": CONFIDENCE,
                    "area": obj.area,
                    "segmentation": segmentation,
                }
            )
        self._images.setdefault(scene.sha1, (_ImageMeta(scene.ext, scene.width, scene.height), annotations))

    def render(self) -> str:
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        used: set[int] = set()
        for image_id, sha1 in enumerate(sorted(self._images), start=1):
            meta, objects = self._images[sha1]
            images.append(
                {
                    "id": image_id,
                    "file_name": f"{sha1}.{meta.ext}",
                    "width": meta.width,
                    "height": meta.height,
                    "date_captured": DATE_CAPTURED,
                    "license": 1,
                    "coco_url": "",
                    "flickr_url": "",
                }
            )
            for obj in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **obj})
                used.add(obj["category_id"])
        categories = [{"id": i, "name": self._class_names[i], "supercategory": "object"} for i in sorted(used)]
        licenses = [{"id": 1, "name": "", "url": ""}]
        return json.dumps({"images": images, "licenses": licenses, "categories": categories, "annotations": annotations})
