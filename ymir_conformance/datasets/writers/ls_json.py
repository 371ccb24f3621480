"""Label Studio JSON (contract §4.3): one task per image, box coordinates in percent of the image size."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..scene import Scene
from . import Labelled


def _result_id(scene: Scene, index: int) -> str:
    """The platform uses ``uuid4().hex[:10]``; here a stable stand-in of the same shape."""
    return hashlib.sha1(f"{scene.sha1}:{index}".encode()).hexdigest()[:10]


def render_ls_json(scene: Scene, labelled: Labelled, class_names: Sequence[str], asset_path: str) -> str:
    results: list[dict[str, Any]] = []
    for index, (class_id, obj) in enumerate(labelled):
        x, y, w, h = (float(v) for v in obj.box)
        results.append(
            {
                "id": _result_id(scene, index),
                "type": "rectanglelabels",
                "value": {
                    "x": x / scene.width * 100,
                    "y": y / scene.height * 100,
                    "width": w / scene.width * 100,
                    "height": h / scene.height * 100,
                    "rotation": 0,
                    "rectanglelabels": [class_names[class_id]],
                },
                "to_name": "image",
                "from_name": "label",
                "image_rotation": 0,
                "original_width": scene.width,
                "original_height": scene.height,
            }
        )
    task = {"predictions": [{"result": results, "ground_truth": False}], "data": {"image": asset_path}}
    return json.dumps(task)
