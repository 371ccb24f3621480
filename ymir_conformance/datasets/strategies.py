"""Hypothesis strategies for property tests of the exporters (import explicitly; not loaded by the package)."""
from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from .scene import Scene, SceneObject

PLACEHOLDER_BYTES = b"\x89PNG placeholder"
"""Annotation writers never decode the image; property tests need no real pixels."""


def class_names() -> st.SearchStrategy[list[str]]:
    """Distinct class names as the platform normalises them: lower-case, stripped, possibly non-ASCII/spaced."""
    alphabet = st.characters(
        categories=("Ll", "Lo", "Nd"), include_characters=" -_.", exclude_characters="\t\n\r:,<>&\"'"
    )
    name = st.text(alphabet, min_size=1, max_size=12).map(lambda s: s.strip()).filter(
        lambda s: bool(s) and s == s.lower()
    )
    return st.lists(name, min_size=1, max_size=6, unique=True)


@st.composite
def boxes(draw: st.DrawFn, width: int, height: int) -> tuple[int, int, int, int]:
    """Any box inside a width x height image (inclusive extents; one-pixel and full-image included)."""
    x = draw(st.integers(0, width - 1))
    y = draw(st.integers(0, height - 1))
    w = draw(st.integers(1, width - x))
    h = draw(st.integers(1, height - y))
    return (x, y, w, h)


@st.composite
def detection_scenes(draw: st.DrawFn, names: Sequence[str]) -> Scene:
    """A scene of any size with up to 8 boxes of the given classes (placeholder image bytes)."""
    width = draw(st.integers(1, 4096))
    height = draw(st.integers(1, 4096))
    objects = draw(
        st.lists(st.builds(SceneObject, st.sampled_from(list(names)), boxes(width, height)), max_size=8)
    )
    tag = draw(st.binary(max_size=8))
    return Scene(
        name="prop.png",
        image_bytes=PLACEHOLDER_BYTES + tag,
        ext="png",
        width=width,
        height=height,
        objects=tuple(objects),
    )
