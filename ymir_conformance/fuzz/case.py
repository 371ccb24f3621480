"""A fuzz input as pure data: what hypothesis draws, what a reproducer file holds, and how it reads in words.

A :class:`FuzzCase` is JSON-serialisable and holds no pixels: :mod:`ymir_conformance.fuzz.render` turns it into
the same image bytes every time. Boxes are ``(x, y, w, h)`` with inclusive extents as the platform stores them
(the exported VOC ``xmax`` is ``x + w - 1``), so a "degenerate" box of width 1 is one whose ``xmin == xmax``.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

CANDIDATES = "candidates"
TRAINING = "training"
SEARCHES = (CANDIDATES, TRAINING)

# every box kind, in the order hypothesis shrinks them (towards an ordinary box inside the image)
BOX_KINDS = ("inside", "overlapping", "tiny", "degenerate", "touching", "full", "across")
BOX_WORDS = {"inside": "inside the image", "overlapping": "overlapping the previous box", "tiny": "of 1x1 px",
             "degenerate": "of zero width or height (xmin == xmax or ymin == ymax)",
             "touching": "touching the border", "full": "covering the whole image",
             "across": "crossing the right or bottom border"}


def classify(x: int, y: int, w: int, h: int, width: int, height: int, overlaps: bool = False) -> str:
    """What a box is, by its geometry (the words of a reproducer): the most telling kind first."""
    if (x, y, w, h) == (0, 0, width, height):
        return "full"
    if x + w > width or y + h > height:
        return "across"
    if x == 0 or y == 0 or x + w == width or y + h == height:
        return "touching"
    if w == 1 and h == 1:
        return "tiny"
    if w == 1 or h == 1:
        return "degenerate"
    return "overlapping" if overlaps else "inside"


@dataclass(frozen=True)
class FuzzBox:
    cls: int  # index into the case's class_names
    x: int
    y: int
    w: int
    h: int
    kind: str = "inside"

    def to_json(self) -> list[Any]:
        return [self.cls, self.x, self.y, self.w, self.h, self.kind]

    @classmethod
    def from_json(cls, v: list[Any]) -> FuzzBox:
        c, x, y, w, h, kind = v
        return cls(int(c), int(x), int(y), int(w), int(h), str(kind))


@dataclass(frozen=True)
class FuzzImage:
    mode: str  # PIL mode of the stored image: RGB, L, RGBA, LA, P, I;16, CMYK
    fmt: str  # asset ext: jpg, png, bmp
    width: int
    height: int
    orientation: int = 0  # EXIF Orientation tag 1-8 (JPEG only); 0: no EXIF at all
    progressive: bool = False  # JPEG only
    seed: int = 0  # the pixels' noise
    boxes: tuple[FuzzBox, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "fmt": self.fmt, "width": self.width, "height": self.height,
                "orientation": self.orientation, "progressive": self.progressive, "seed": self.seed,
                "boxes": [b.to_json() for b in self.boxes]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FuzzImage:
        return cls(str(d["mode"]), str(d["fmt"]), int(d["width"]), int(d["height"]), int(d.get("orientation", 0)),
                   bool(d.get("progressive", False)), int(d.get("seed", 0)),
                   tuple(FuzzBox.from_json(b) for b in d.get("boxes", [])))

    def describe(self) -> str:
        words = [f"mode {self.mode}", {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}.get(self.fmt, self.fmt),
                 f"{self.width}\u00d7{self.height} px"]
        if self.fmt == "jpg":
            words.append("progressive" if self.progressive else "baseline")
        if self.orientation:
            words.append(f"EXIF orientation {self.orientation}")
        if self.boxes:
            kinds = Counter(b.kind for b in self.boxes)
            words.append(f"{len(self.boxes)} box(es)" + (" (" + ", ".join(
                f"{n} {BOX_WORDS[k]}" for k, n in kinds.items() if k != "inside") + ")"
                if set(kinds) != {"inside"} else ""))
        return ", ".join(words)


@dataclass(frozen=True)
class FuzzCase:
    """One generated input: candidate images (``search == candidates``), or a training set (``images`` the
    train split, ``val`` the validation split) with its ``class_names``."""

    search: str
    class_names: tuple[str, ...]
    images: tuple[FuzzImage, ...]
    val: tuple[FuzzImage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"search": self.search, "class_names": list(self.class_names),
                "images": [i.to_json() for i in self.images], "val": [i.to_json() for i in self.val]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FuzzCase:
        return cls(str(d["search"]), tuple(str(c) for c in d["class_names"]),
                   tuple(FuzzImage.from_json(i) for i in d["images"]), tuple(FuzzImage.from_json(i) for i in d.get("val", [])))

    def key(self) -> str:
        """A canonical text of the case: equal cases (however hypothesis drew them) run once."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)

    @property
    def all_images(self) -> tuple[FuzzImage, ...]:
        return self.images + self.val

    def describe(self) -> str:
        """The input in words: '1 candidate image, mode L, PNG, 16×16 px'."""
        if self.search == CANDIDATES:
            head = f"{len(self.images)} candidate image{'s' if len(self.images) != 1 else ''}"
            parts = [i.describe() for i in self.images]
        else:
            used = {b.cls for i in self.all_images for b in i.boxes}
            head = (f"{len(self.images)} training image{'s' if len(self.images) != 1 else ''} and "
                    f"{len(self.val)} validation image{'s' if len(self.val) != 1 else ''}, "
                    f"{len(self.class_names)} class{'es' if len(self.class_names) != 1 else ''}")
            absent = len(self.class_names) - len(used & set(range(len(self.class_names))))
            if absent:
                head += f" ({absent} with no examples)"
            odd = [n for n in self.class_names if not n.isascii() or len(n) > 24]
            if odd:
                head += f", class names such as {odd[0][:40]!r}"
            parts = [f"train: {i.describe()}" for i in self.images] + [f"val: {i.describe()}" for i in self.val]
        if len(parts) == 1:
            return f"{head}, {parts[0]}"
        return head + ": " + "; ".join(parts)


def coverage(cases: list[FuzzCase]) -> dict[str, Any]:
    """What the inputs tried covered: modes, formats, sizes, orientations, box kinds, images per input."""
    images = [i for c in cases for i in c.all_images]
    if not images:
        return {"images": 0}
    px = [i.width * i.height for i in images]
    return {
        "images": len(images),
        "images_per_input": [min(len(c.all_images) for c in cases), max(len(c.all_images) for c in cases)],
        "modes": dict(sorted(Counter(i.mode for i in images).items())),
        "formats": dict(sorted(Counter(i.fmt for i in images).items())),
        "orientations": sorted({i.orientation for i in images if i.orientation}),
        "progressive_jpeg": sum(1 for i in images if i.fmt == "jpg" and i.progressive),
        "smallest": min(((i.width, i.height) for i in images), key=lambda s: s[0] * s[1]),
        "largest": max(((i.width, i.height) for i in images), key=lambda s: s[0] * s[1]),
        "one_pixel_images": sum(1 for p in px if p == 1),
        "megapixels_max": round(max(px) / 1e6, 2),
        "box_kinds": dict(sorted(Counter(b.kind for i in images for b in i.boxes).items())),
        "class_counts": sorted({len(c.class_names) for c in cases}) if any(c.search == TRAINING for c in cases)
        else [],
        "empty_val_splits": sum(1 for c in cases if c.search == TRAINING and not c.val),
    }


__all__ = ["BOX_KINDS", "classify", "CANDIDATES", "FuzzBox", "FuzzCase", "FuzzImage", "SEARCHES", "TRAINING", "coverage"]
