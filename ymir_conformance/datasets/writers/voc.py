"""Pascal VOC XML as the platform writes it (contract §4.2): one line, no declaration."""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence

from ..scene import Scene
from . import Labelled

IMAGE_QUALITY = -1.0
BOX_QUALITY = -1.0
CONFIDENCE = -1.0


def _sub(parent: ElementTree.Element, tag: str, text: str | None = None) -> ElementTree.Element:
    node = ElementTree.SubElement(parent, tag)
    if text is not None:
        node.text = text
    return node


def render_voc(scene: Scene, labelled: Labelled, class_names: Sequence[str], asset_path: str,
               image_quality: float = IMAGE_QUALITY) -> str:
    """``asset_path`` is the in-container asset path the platform puts in ``<filename>``.

    ``image_quality``: the gt pass writes the stored value, which the platform's VOC import sets to -1.0 when the
    user's XML has none (``annotations._import_annotations_voc_xml``); the predictions pass gets no image cks, so
    the platform writes the protobuf default 0 (both checked by tests/differential/test_in_differential.py).
    """
    root = ElementTree.Element("annotation")
    _sub(root, "folder", "folder")
    _sub(root, "filename", asset_path)
    source = _sub(root, "source")
    _sub(source, "annotation", "unknown")
    _sub(source, "image", "unknown")
    size = _sub(root, "size")
    _sub(size, "width", str(scene.width))
    _sub(size, "height", str(scene.height))
    _sub(size, "depth", str(scene.channels))
    _sub(root, "segmented", "0")
    _sub(root, "image_quality", f"{image_quality:.4f}")
    for class_id, obj in labelled:
        node = _sub(root, "object")
        _sub(node, "name", class_names[class_id])
        _sub(node, "pose", "unknown")
        _sub(node, "truncated", "unknown")
        _sub(node, "occluded", "0")
        bndbox = _sub(node, "bndbox")
        _sub(bndbox, "xmin", str(obj.box[0]))
        _sub(bndbox, "ymin", str(obj.box[1]))
        _sub(bndbox, "xmax", str(obj.xmax))
        _sub(bndbox, "ymax", str(obj.ymax))
        _sub(bndbox, "rotate_angle", f"{0.0:.4f}")
        _sub(node, "difficult", "0")
        _sub(node, "box_quality", f"{BOX_QUALITY:.4f}")
        _sub(node, "confidence", f"{CONFIDENCE:.4f}")
    return ElementTree.tostring(root, encoding="unicode")
