"""The one COCO JSON for all splits (contract §4.4), built incrementally and written once at the end."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, TextIO

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
    text = counts.decode("ascii") if isinstance(counts, bytes) else counts
    return {"counts": text, "size": [int(v) for v in rle["size"]]}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def segmentation_of(obj: SceneObject) -> tuple[dict[str, Any] | list[list[int | float]], int]:
    """``(segmentation, iscrowd)``: a single polygon if the object has one, else RLE for a mask, else ``{}``.

    ``iscrowd`` is the value the platform stored at import (``ObjectAnnotation.iscrowd``), written back as is: 0 for
    the suite's data, masks included (the platform does not derive it from the RLE form).
    """
    if obj.polygon is not None:
        return [[_number(v) for v in obj.polygon]], 0
    if obj.mask is not None:
        return encode_rle(obj.mask), 0
    return {}, 0


@dataclass(frozen=True, slots=True)
class _ImageMeta:
    """What the COCO file needs of a scene, so that image bytes and masks are not kept alive."""

    ext: str
    width: int
    height: int


class CocoBuilder:
    """Collect images and objects in any order; ``write`` lists them as ``exporter._single_task_annotations_to_coco``.

    * ``images``: sorted by sha1 (ids 1..n in that order);
    * ``categories``: only the classes present, in ascending **label id** (the user's label store order,
      ``label_names``; the platform iterates ``task_class_ids``, a set of label ids), each with its ``id`` = index in
      ``class_names``. Default label store: ``class_names`` sorted alphabetically;
    * ``annotations``: in asset-map order, i.e. the order images were added (the platform iterates
      ``image_annotations``), not in image-id order; ids 1..m in that order.

    Each image's annotations are kept pre-serialised (without their ids), so memory per image is about the size of
    its JSON, and the file is written piece by piece.
    """

    def __init__(self, class_names: Sequence[str], label_names: Sequence[str] | None = None) -> None:
        self._class_names = tuple(class_names)
        labels = list(label_names) if label_names is not None else sorted(class_names)
        missing = [n for n in class_names if n not in labels]
        self._label_id = {name: i for i, name in enumerate(labels + missing)}
        self._images: dict[str, tuple[_ImageMeta, list[str]]] = {}
        self._used: set[int] = set()

    def add(self, scene: Scene, labelled: Labelled) -> None:
        if scene.sha1 in self._images:
            return
        fragments: list[str] = []
        for class_id, obj in labelled:
            segmentation, iscrowd = segmentation_of(obj)
            body = {
                "category_id": class_id,
                "iscrowd": iscrowd,
                "bbox": list(obj.box),
                "confidence": CONFIDENCE,
                "area": obj.area,
                "segmentation": segmentation,
            }
            fragments.append(json.dumps(body)[1:-1])  # '"category_id": 0, ...' without the braces
            self._used.add(class_id)
        self._images[scene.sha1] = (_ImageMeta(scene.ext, scene.width, scene.height), fragments)

    def write(self, out: TextIO) -> None:
        """Write the JSON exactly as ``json.dumps`` of the platform's dict (default separators) would."""
        order = sorted(self._images)
        images = []
        for image_id, sha1 in enumerate(order, start=1):
            meta = self._images[sha1][0]
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
        by_label_id = sorted(self._used, key=lambda i: self._label_id[self._class_names[i]])
        categories = [{"id": i, "name": self._class_names[i], "supercategory": "object"} for i in by_label_id]
        licenses = [{"id": 1, "name": "", "url": ""}]
        out.write('{"images": ' + json.dumps(images))
        out.write(', "licenses": ' + json.dumps(licenses))
        out.write(', "categories": ' + json.dumps(categories))
        out.write(', "annotations": [')
        anno_id = 0
        image_ids = {sha1: image_id for image_id, sha1 in enumerate(order, start=1)}
        for sha1, (_, fragments) in self._images.items():  # asset-map (insertion) order
            image_id = image_ids[sha1]
            for fragment in fragments:
                anno_id += 1
                out.write(f'{", " if anno_id > 1 else ""}{{"id": {anno_id}, "image_id": {image_id}, {fragment}}}')
        out.write("]}")

    def render(self) -> str:
        buf = io.StringIO()
        self.write(buf)
        return buf.getvalue()
