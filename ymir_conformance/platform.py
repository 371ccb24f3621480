"""Platform releases an image can be judged against (contract §0 version matrix).

Releases are grouped into *families* that behave the same for every executor-visible rule. A range such
as ``"2.1-2.3"`` or ``"2.4+"`` or ``"-2.0"`` selects families; checks declare their level per range.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering


@total_ordering
@dataclass(frozen=True)
class Release:
    """One platform release family, e.g. ``2.5`` (2.5.0) or ``2.0`` (2.0.0-2.0.2)."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Release:
        parts = text.strip().split(".")
        try:
            major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        except (ValueError, IndexError):
            raise ValueError(f"{text!r} is not a platform release (expected e.g. 2.5 or 2.3.0)") from None
        release = cls(major, minor)
        if release not in RELEASES:
            known = ", ".join(str(r) for r in RELEASES)
            raise ValueError(f"platform release {text!r} is not known; known release families: {known}")
        return release

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Release):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def protocol_version(self) -> str | None:
        """``protocol_version`` as env.yaml carries it on this release (absent on 1.1)."""
        return None if self < Release(2, 0) else "1.1.0"

    @property
    def has_manifest_file(self) -> bool:
        return self >= Release(2, 1)

    @property
    def config_has_object_type(self) -> bool:
        return self >= Release(2, 4)

    @property
    def per_stage_models(self) -> bool:
        """2.0+ extracts model stages to /in/models/<stage>/<file>; 1.1 flat."""
        return self >= Release(2, 0)


RELEASES: tuple[Release, ...] = tuple(
    Release(*v) for v in ((1, 1), (2, 0), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5))
)
LATEST: Release = RELEASES[-1]


@dataclass(frozen=True)
class ReleaseRange:
    """An inclusive range of release families: ``"2.1-2.3"``, ``"2.4+"``, ``"-2.0"``, ``"2.5"``, ``"all"``."""

    low: Release
    high: Release

    @classmethod
    def parse(cls, text: str) -> ReleaseRange:
        t = text.strip()
        if t in ("all", "*", ""):
            return cls(RELEASES[0], RELEASES[-1])
        if t.endswith("+"):
            return cls(Release.parse(t[:-1]), RELEASES[-1])
        if t.startswith("-"):
            return cls(RELEASES[0], Release.parse(t[1:]))
        if "-" in t:
            lo, hi = t.split("-", 1)
            return cls(Release.parse(lo), Release.parse(hi))
        r = Release.parse(t)
        return cls(r, r)

    def __contains__(self, release: object) -> bool:
        return isinstance(release, Release) and self.low <= release <= self.high

    def releases(self) -> tuple[Release, ...]:
        return tuple(r for r in RELEASES if r in self)

    def __str__(self) -> str:
        if self.low == self.high:
            return str(self.low)
        if self.high == RELEASES[-1] and self.low == RELEASES[0]:
            return "all"
        if self.high == RELEASES[-1]:
            return f"{self.low}+"
        return f"{self.low}-{self.high}"


def describe(releases: list[Release] | tuple[Release, ...]) -> str:
    """Compress a sorted list of releases into ranges for messages: ``2.1-2.3, 2.5``."""
    out: list[str] = []
    idx = sorted(RELEASES.index(r) for r in releases)
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        lo, hi = RELEASES[idx[i]], RELEASES[idx[j]]
        out.append(str(lo) if lo == hi else f"{lo}-{hi}")
        i = j + 1
    return ", ".join(out) if out else "none"
