"""Small, total helpers for judging values an image wrote (never raise on any input)."""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

from .. import guard
from ..errors import UnsafeOutput
from .base import short


def kind(value: Any) -> str:
    """The JSON/YAML kind of a value, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def described(value: Any) -> str:
    return f"{kind(value)} {short(value, 80)}"


def is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_float(value: Any) -> float | None:
    """What pydantic-v1 ``float`` would accept (numbers, numeric strings), else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_int(value: Any) -> int | None:
    """What pydantic-v1 ``int`` would accept (ints, finite floats truncated, integer strings), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def key_text(key: Any) -> str:
    """A mapping key as a message shows it (strings bare, other keys as repr), at most 100 characters."""
    if isinstance(key, str):
        return key if len(key) <= 100 else key[:97] + "..."
    return short(key, 100)


def regular_file(root: Path, rel: str) -> tuple[bool, str]:
    """Whether ``root/rel`` is a regular file, or a link that stays inside ``root`` to one (TR-10 judges those).

    Returns (ok, problem). Nothing is followed out of ``root``: a link at a directory component, an absolute
    link, or a relative link that climbs out of ``root`` is a problem, and the problem says that the platform,
    which follows links, would read a file of its own host there.
    """
    platform_follows = ("; the platform follows links when it packs the model (shutil.copy), so it would copy a "
                        "file of its own host into the model package")
    try:
        st = guard.lstat_beneath(root, rel)
    except UnsafeOutput as exc:
        return False, exc.problem.split(";")[0] + platform_follows
    if st is None:
        return False, "does not exist"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(root / rel)
        except OSError:
            return False, "is an unreadable symlink"
        if os.path.isabs(target):
            return False, f"is a symlink to the absolute path {short(target)}" + platform_follows
        inside = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if inside == ".." or inside.startswith("../") or inside.startswith("/"):
            return False, f"is a symlink (to {short(target)}) out of its folder" + platform_follows
        try:
            resolved = guard.lstat_beneath(root, inside)
        except UnsafeOutput as exc:
            return False, f"is a symlink (to {short(target)}) whose target {exc.problem.split(';')[0]}" + platform_follows
        if resolved is None:
            return False, f"is a dangling symlink (to {short(target)})"
        if not stat.S_ISREG(resolved.st_mode):
            return False, f"is a symlink (to {short(target)}) to {guard.what_is(resolved.st_mode)}, not a regular file"
        return True, ""
    if stat.S_ISDIR(st.st_mode):
        return False, "is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return False, f"is {guard.what_is(st.st_mode)}, not a regular file"
    return True, ""


def is_symlink(root: Path, rel: str) -> bool:
    """Whether ``root/rel`` (reached without following links) is a symlink."""
    try:
        st = guard.lstat_beneath(root, rel)
    except UnsafeOutput:
        return False
    return st is not None and stat.S_ISLNK(st.st_mode)


def stem(name: str) -> str:
    """The platform's asset id of a path: ``splitext(basename(p))[0]``."""
    return os.path.splitext(os.path.basename(name))[0]
