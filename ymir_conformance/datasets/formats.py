"""``export_format`` parsing and the annotation formats each platform release accepts (contract §4)."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import ObjectType
from ..platform import LATEST, Release, ReleaseRange

DEFAULT_EXPORT_FORMAT = "voc:raw"
"""What 2.x uses for an empty or missing ``export_format`` (``exporter.parse_export_type``)."""


@dataclass(frozen=True)
class AnnotationFormat:
    """One accepted annotation name: which writer serves it, and on which releases it is accepted."""

    name: str
    writer: str  # ark | voc | ls_json | coco | seg_mask
    releases: ReleaseRange


def _fmt(name: str, writer: str, releases: str) -> AnnotationFormat:
    return AnnotationFormat(name, writer, ReleaseRange.parse(releases))


ANNOTATION_FORMATS: dict[str, AnnotationFormat] = {
    f.name: f
    for f in (
        _fmt("ark", "ark", "2.0+"),
        _fmt("det-ark", "ark", "2.0+"),
        _fmt("voc", "voc", "2.0+"),
        _fmt("det-voc", "voc", "2.0+"),
        _fmt("ls_json", "ls_json", "2.0-2.4"),
        _fmt("det-ls-json", "ls_json", "2.0-2.4"),
        _fmt("seg-coco", "coco", "2.1+"),
        _fmt("coco", "coco", "2.5"),
        _fmt("seg-mask", "seg_mask", "2.0"),
        _fmt("seg-poly", "voc", "2.0"),  # the 2.0 VOC writer; polygons raise NotImplementedError there
    )
}
"""Annotation names of ``mir/tools/annotations.py:parse_anno_format`` per release; ``none`` and unknown names
mean no annotations."""

LEGACY_FORMAT = "ark"
"""ymir 1.0/1.1 ignore ``export_format``: training always gets 5-column ARK."""


def parse_export_format(value: str | None, release: Release = LATEST) -> tuple[str | None, str]:
    """``(annotation format or None for none, asset format)`` as the platform reads ``export_format``.

    Empty or missing → ``voc:raw``. Not exactly one ``:`` → ``ValueError`` (the platform fails with 169999).
    An asset part other than ``raw`` (case-insensitive) → ``ValueError`` (``lmdb`` is NotImplementedError
    there, anything else "unknown asset format"). The annotation part is lower-cased (not stripped); an
    unknown name, ``none``, or a name the release does not accept → ``None``. On 1.x → ``("ark", "raw")``.
    """
    if release < Release(2, 0):
        return (LEGACY_FORMAT, "raw")
    if not value:
        value = DEFAULT_EXPORT_FORMAT
    parts = value.split(":")
    if len(parts) != 2:
        raise ValueError(
            f"export_format {value!r} must be '<annotation>:<asset>' with exactly one ':' "
            "(the platform fails the task with 169999)"
        )
    anno, asset = parts
    if asset.lower() != "raw":
        why = "lmdb is not implemented" if asset.lower() == "lmdb" else "unknown asset format"
        raise ValueError(f"export_format {value!r}: asset format must be 'raw' ({why} on the platform)")
    fmt = ANNOTATION_FORMATS.get(anno.lower())
    if fmt is None or release not in fmt.releases:
        return (None, "raw")
    return (fmt.name, "raw")


def writer_for(annotation_format: str) -> str:
    """The writer behind an annotation name returned by ``parse_export_format``."""
    return ANNOTATION_FORMATS[annotation_format].writer if annotation_format != LEGACY_FORMAT else "ark"


FORMAT_ALIASES: dict[str, str] = {"ark": "det-ark", "voc": "det-voc", "ls_json": "det-ls-json"}
"""Annotation names the platform treats alike (contract §4: ``ark``/``det-ark``, ``voc``/``det-voc``,
``ls_json``/``det-ls-json``; one writer, accepted on the same releases) -> the name :func:`formats_for` uses."""
_SAME_FILE = {"coco": "seg-coco", "seg-coco": "coco"}  # one coco-annotations.json; `coco` only on 2.5


def canonical_format(name: str, object_type: ObjectType, release: Release = LATEST) -> str | None:
    """The :func:`formats_for` name that ``name`` (an annotation name, any case, or a whole ``export_format``
    value) gives ``object_type`` on ``release``: ``voc`` / ``VOC:raw`` -> ``det-voc``. None when the release
    does not accept the name, or when it is not a format of this object type (``none``, unknown names)."""
    anno = name.split(":", 1)[0].lower()
    offered = formats_for(object_type, release)
    if release < Release(2, 0):
        return None  # 1.0/1.1 ignore export_format (always ARK)
    fmt = ANNOTATION_FORMATS.get(anno)
    if fmt is None or release not in fmt.releases:
        return None
    for candidate in (FORMAT_ALIASES.get(anno, anno), _SAME_FILE.get(anno, "")):
        if candidate in offered:
            return candidate
    return None


def formats_for(object_type: ObjectType, release: Release = LATEST) -> list[str]:
    """The ``export_format`` values (``<name>:raw``-less names) that give this object type annotations."""
    if release < Release(2, 0):
        return ["det-ark"] if object_type == ObjectType.DETECTION else []
    if object_type == ObjectType.DETECTION:
        names = ["det-ark", "det-voc", "det-ls-json", "coco"]
    elif object_type == ObjectType.SEMANTIC_SEGMENTATION:
        names = ["seg-coco", "coco", "seg-mask"]
    elif object_type == ObjectType.INSTANCE_SEGMENTATION:
        names = ["seg-coco", "coco"]
    else:
        names = ["coco"]
    return [n for n in names if release in ANNOTATION_FORMATS[n].releases]
