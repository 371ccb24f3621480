"""Hypothesis strategies that draw :class:`~ymir_conformance.fuzz.case.FuzzCase` inputs the platform can send.

Only inputs the platform really stores and exports are drawn (docs/fuzz-inputs.md, with the platform source):
JPEG, PNG and BMP assets of any PIL mode (stored as uploaded, content-addressed), sizes from 1x1 px up to
:data:`MAX_SIDE` px on a side and :data:`MAX_PIXELS` in all, boxes of width or height >= 1 (the importer drops
``w <= 0`` or ``h <= 0``) that may touch or cross the right and bottom border (it does not clip), class names
lower-cased and stripped.

Every choice is ordered so that hypothesis shrinks towards a small, well-behaved input: fewer images, mode RGB,
an ordinary size (16..320 px; 1x1 only when the failure needs it), no EXIF, baseline JPEG, fewer boxes, boxes
inside the image, the default class names. Odd values are drawn often (each mode about one image in seven, a
1x1 image about one in sixteen) so that a failing input shows up within the first few examples.
"""
from __future__ import annotations

from hypothesis import strategies as st

from .case import BOX_KINDS, CANDIDATES, TRAINING, FuzzBox, FuzzCase, FuzzImage, classify

MAX_SIDE = 8000
MAX_PIXELS = 4_000_000
ORDINARY = (16, 320)  # what sizes shrink to
MODES = ("RGB", "L", "RGBA", "LA", "P", "I;16", "CMYK")
FORMATS: dict[str, tuple[str, ...]] = {  # the formats Pillow writes each mode in, first = the usual one
    "RGB": ("jpg", "png", "bmp"), "L": ("png", "jpg", "bmp"), "RGBA": ("png",), "LA": ("png",),
    "P": ("png", "bmp"), "I;16": ("png",), "CMYK": ("jpg",),
}
ODD_SIZES = ((1, 1), (1, 64), (64, 1), (2, 3), (7, 480))
DEFAULT_CLASS_NAMES = ("person", "cat", "dog")
MAX_CLASSES = 40
MAX_NAME = 64
MAX_CANDIDATES = 6
MAX_TRAIN = 5
MAX_VAL = 3
MAX_BOXES = 5


def _large() -> st.SearchStrategy[tuple[int, int]]:
    @st.composite
    def draw_large(draw: st.DrawFn) -> tuple[int, int]:
        w = draw(st.integers(ORDINARY[1] + 1, MAX_SIDE))
        h = draw(st.integers(ORDINARY[1] + 1, max(ORDINARY[1] + 1, min(MAX_SIDE, MAX_PIXELS // w))))
        return (w, h)
    return draw_large()


def sizes(ordinary_only: bool = False) -> st.SearchStrategy[tuple[int, int]]:
    """(width, height): ordinary first (shrinks to 16x16), then odd shapes (1x1, 1-px lines), tiny, large."""
    ordinary = st.tuples(st.integers(*ORDINARY), st.integers(*ORDINARY))
    if ordinary_only:
        return ordinary
    return st.one_of(ordinary, st.sampled_from(ODD_SIZES), st.tuples(st.integers(1, 15), st.integers(1, 15)),
                     _large())


@st.composite
def boxes(draw: st.DrawFn, width: int, height: int, n_classes: int, min_size: int = 0) -> tuple[FuzzBox, ...]:
    """Boxes of every kind in :data:`~ymir_conformance.fuzz.case.BOX_KINDS` (width and height >= 1)."""
    out: list[FuzzBox] = []
    for _ in range(draw(st.integers(min_size, MAX_BOXES))):
        cls = draw(st.integers(0, max(0, n_classes - 1)))
        kind = draw(st.sampled_from(BOX_KINDS))
        half_w, half_h = max(1, width // 2), max(1, height // 2)
        w = max(1, min(width, half_w + draw(st.integers(-half_w, width - half_w))))
        h = max(1, min(height, half_h + draw(st.integers(-half_h, height - half_h))))
        x, y = (width - w) // 2, (height - h) // 2
        if kind == "inside":
            x = max(0, min(width - w, x + draw(st.integers(-x, width - w - x))))
            y = max(0, min(height - h, y + draw(st.integers(-y, height - h - y))))
        elif kind == "overlapping" and out:
            p = out[-1]
            x, y = min(width - 1, p.x + p.w // 3), min(height - 1, p.y + p.h // 3)
            w, h = max(1, min(p.w, width - x)), max(1, min(p.h, height - y))
        elif kind == "tiny":
            w = h = 1
            x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        elif kind == "degenerate":
            if draw(st.booleans()):
                w = 1
            else:
                h = 1
        elif kind == "touching":
            side = draw(st.sampled_from(("right", "bottom", "left", "top")))
            x = width - w if side == "right" else 0 if side == "left" else x
            y = height - h if side == "bottom" else 0 if side == "top" else y
        elif kind == "full":
            x, y, w, h = 0, 0, width, height
        elif kind == "across":  # starts inside, ends past the right and/or bottom border (never clipped)
            where = draw(st.sampled_from(("right", "bottom", "corner")))
            if where in ("right", "corner"):
                x = min(width - 1, width - (w + 1) // 2)
                w = w + draw(st.integers(1, 64))
            if where in ("bottom", "corner"):
                y = min(height - 1, height - (h + 1) // 2)
                h = h + draw(st.integers(1, 64))
        prev = out[-1] if out else None
        overlaps = (prev is not None and x < prev.x + prev.w and prev.x < x + w and y < prev.y + prev.h
                    and prev.y < y + h)
        out.append(FuzzBox(cls, x, y, w, h, classify(x, y, w, h, width, height, overlaps)))
    return tuple(out)


@st.composite
def images(draw: st.DrawFn, n_classes: int, min_boxes: int = 0, ordinary_only: bool = False) -> FuzzImage:
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS[mode]))
    width, height = draw(sizes(ordinary_only))
    orientation = draw(st.integers(0, 8)) if fmt == "jpg" else 0
    progressive = draw(st.booleans()) if fmt == "jpg" else False
    seed = draw(st.integers(0, 255))
    found = draw(boxes(width, height, n_classes, min_boxes)) if n_classes else ()
    return FuzzImage(mode, fmt, width, height, orientation, progressive, seed, found)


def _normalised(s: str) -> str:
    return s.strip().lower()


def class_names() -> st.SearchStrategy[tuple[str, ...]]:
    """The default three names first; then lists of up to :data:`MAX_CLASSES` names as the platform normalises
    them (lower case, stripped), ASCII, CJK and other letters, spaces and punctuation, up to :data:`MAX_NAME`
    characters. No control characters, commas, tabs or newlines (the web form and the index files refuse them)."""
    alphabet = st.characters(categories=("Ll", "Lu", "Lo", "Nd"), include_characters=" -_.()",
                             exclude_characters=",\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")
    ascii_name = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
    any_name = st.text(alphabet, min_size=1, max_size=MAX_NAME).map(_normalised).filter(
        lambda s: bool(s) and s == _normalised(s) and len(s) <= MAX_NAME)
    names = st.lists(st.one_of(ascii_name, any_name), min_size=1, max_size=MAX_CLASSES, unique_by=_normalised)
    return st.one_of(st.just(DEFAULT_CLASS_NAMES), names.map(tuple))


def candidate_cases(model_class_names: tuple[str, ...]) -> st.SearchStrategy[FuzzCase]:
    """1 to :data:`MAX_CANDIDATES` candidate images; objects drawn with the model's classes (ground truth)."""
    n = len(model_class_names)
    return st.lists(images(n), min_size=1, max_size=MAX_CANDIDATES).map(
        lambda imgs: FuzzCase(CANDIDATES, tuple(model_class_names), tuple(imgs)))


@st.composite
def training_cases(draw: st.DrawFn) -> FuzzCase:
    """A training set: class names, 1 to :data:`MAX_TRAIN` training images (the first, of an ordinary size, holds
    at least one box, so there is something to learn from) and 0 to :data:`MAX_VAL` validation images."""
    names = draw(class_names())
    n = len(names)
    first = draw(images(n, min_boxes=1, ordinary_only=True))
    rest = draw(st.lists(images(n), max_size=MAX_TRAIN - 1))
    val = draw(st.lists(images(n), max_size=MAX_VAL))
    return FuzzCase(TRAINING, names, (first, *rest), tuple(val))


__all__ = ["MAX_PIXELS", "MAX_SIDE", "MODES", "FORMATS", "boxes", "candidate_cases", "class_names", "images",
           "sizes", "training_cases"]
