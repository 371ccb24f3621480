"""Failure text sized for a human: what a failing test prints by default (``-v`` prints everything).

One author mistake shows up in many places: the same rule for every monitor sample, in every run, with a fix of
several hundred characters and a docker command of seven hundred. By default a failing test prints:

* per rule, its first violation in full (message, location, found, expected), the others as a count with their
  locations on one line; a first violation already shown in full by an earlier failure (the same rule and
  message, another run) as one line pointing there;
* each fix once per session, wrapped at :data:`WIDTH` columns; later failures point to the first;
* per run, once: its exit, its docker command shortened (:func:`short_command`; the full one is in report.json
  ``runs[].argv`` and with ``-v``), the error found in its log (:mod:`excerpt`), its last lines, and where the
  full log is; the other failures of the run point to the first.

:class:`Shown` remembers what was shown (per pytest process: with xdist each worker remembers its own).
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

from .contracts.base import Violation
from .printable import printable

WIDTH = 100  # fix lines are wrapped at this many columns
LOCATIONS = 160  # characters of the locations listed on a count line ...
POINTER_LOCATIONS = 80  # ... and on a line pointing to a violation shown in full above
MESSAGE = 200  # characters of a message repeated on a pointing line
_CAP = re.compile(r"^\.\.\. and (\d+) more like the above$")  # contracts.base.cap's summary violation


@dataclass
class Shown:
    """What this process's failures already printed: test names by fix, by first violation, by run."""

    fixes: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, fix) -> test
    firsts: dict[tuple[str, str], str] = field(default_factory=dict)  # (rule, message) -> test
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (image, run id) -> test
    commands: dict[str, str] = field(default_factory=dict)  # short docker command -> test


def capped(message: str) -> int | None:
    """How many violations a 'contracts.base.cap' summary violation stands for; None for a real violation."""
    m = _CAP.match(message)
    return int(m.group(1)) if m else None


def wrap(label: str, text: str, indent: int = 4, width: int = WIDTH) -> list[str]:
    """``label text`` wrapped at ``width`` columns, continuation lines indented two more."""
    return textwrap.wrap(printable(text, limit=0), width=width, initial_indent=" " * indent + label,
                         subsequent_indent=" " * (indent + 2), break_long_words=True, break_on_hyphens=False) \
        or [" " * indent + label.rstrip()]


def location(v: Violation) -> str:
    return v.file + (f":{v.where}" if v.where else "") if v.file else v.where


def _locations(vs: list[Violation], extra: int, limit: int = LOCATIONS) -> str:
    """Where ``vs`` are, on one line: the file once when they share it, capped at :data:`LOCATIONS` chars."""
    files = {v.file for v in vs}
    if len(files) == 1 and next(iter(files)):
        head, items = f"{next(iter(files))}: ", [v.where or "(the file)" for v in vs]
    else:
        head, items = "", [location(v) or "(no location)" for v in vs]
    items = [printable(i, limit=80) for i in dict.fromkeys(items)]
    shown: list[str] = []
    size = 0
    for item in items:
        if shown and size + len(item) > limit:
            break
        shown.append(item)
        size += len(item) + 2
    rest = len(items) - len(shown) + extra
    return head + ", ".join(shown) + (f" (+{rest} more)" if rest > 0 else "")


def same_shape(command: str) -> str:
    """A :func:`short_command` without its count of further mounts: the runs of one image with the same user,
    GPUs, network and limits have the same shape (training has one mount more, for TensorBoard)."""
    return re.sub(r" \(\+\d+ mounts?\)", "", command)


def headline(message: str) -> str:
    """A message shortened for a line that points to where it was shown in full: up to its first '; ' (when
    that leaves enough to recognise it), capped at :data:`MESSAGE` characters."""
    cut = message.find("; ")
    if 40 <= cut <= MESSAGE:
        return printable(message[:cut], limit=MESSAGE) + " …"
    return printable(message, limit=MESSAGE)


def violations(vs: list[Violation], shown: Shown, test: str) -> list[str]:
    """The compact rendering of one test's violations (see the module doc)."""
    groups: dict[str, list[Violation]] = {}
    for v in vs:
        groups.setdefault(v.rule, []).append(v)
    out: list[str] = []
    for rule, group in groups.items():
        real = [v for v in group if not _CAP.match(v.message)]
        capped = sum(int(m.group(1)) for v in group if (m := _CAP.match(v.message)))
        if not real:
            out += [v.render() for v in group]
            continue
        first, others = real[0], real[1:]
        count = len(others) + capped
        tag = f"[{rule} {first.level}]"
        earlier = shown.firsts.get((rule, first.message))
        if earlier is not None and earlier != test:
            where = f": {_locations(real, capped, POINTER_LOCATIONS)}" if location(first) else ""
            out.append(f"{tag} {headline(first.message)} ({count + 1} in this run{where}; found, expected and "
                       f"fix: as in {earlier} above)")
            continue
        shown.firsts[(rule, first.message)] = test
        out.append(first.render(with_fix=False))
        if first.fix:
            fixed = shown.fixes.setdefault((rule, first.fix), test)
            out += wrap("fix: ", first.fix) if fixed == test else [f"    fix: as in {fixed} above"]
        if count:
            out.append(f"{tag} and {count} more in this run at {_locations(others, capped)}"
                       if others else f"{tag} and {count} more in this run")
    return out


_MOUNT_V = re.compile(r"^-v(?P<host>.+?):(?P<target>/[^:]*)(?::(?P<mode>\w+))?$")
_MOUNT_VOL = re.compile(r"^--mount=.*\bdst=(?P<target>[^,]+)(?P<ro>.*readonly)?")


def short_command(argv: list[str]) -> str:
    """The ``docker run`` line of a run, shortened: /in and /out with their host folders abbreviated and the
    other mounts counted, the user, GPUs and network as given, the other flags (--shm-size, the containment
    limits) counted, then the image."""
    if len(argv) < 3 or argv[:2] != ["docker", "run"]:
        return printable(" ".join(argv), limit=300)
    args, image = argv[2:-1], argv[-1]
    keep: list[str] = []
    mounts: list[str] = []
    other_mounts = 0
    flags = 0
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--user", "--gpus", "--network") and i + 1 < len(args):
            keep += [a, args[i + 1]]
            i += 2
            continue
        if a == "--name" and i + 1 < len(args):
            i += 2
            continue
        m, vol = _MOUNT_V.match(a), _MOUNT_VOL.match(a)
        if m is not None or vol is not None:
            target = (m or vol).group("target")  # type: ignore[union-attr]
            if target in ("/in", "/out"):
                mode = (m.group("mode") if m is not None else ("ro" if vol and vol.group("ro") else None))
                mounts.append(f"-v …:{target}" + (f":{mode}" if mode and mode != "rw" else ""))
            else:
                other_mounts += 1
        elif a != "--rm":
            flags += 1
        i += 1
    if other_mounts:
        mounts.append(f"(+{other_mounts} mount{'s' if other_mounts > 1 else ''})")
    parts = ["docker run", *mounts, *keep]
    if flags:
        parts.append(f"(+{flags} flags)")
    parts.append(image)
    return printable(" ".join(parts), limit=400)


__all__ = ["Shown", "WIDTH", "capped", "headline", "same_shape", "short_command", "violations", "wrap"]
