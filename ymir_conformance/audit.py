"""The input-coverage audit: which files under ``/in`` a task container opened (issue 11).

While a task container runs, the suite watches the host side of ``/in`` and of the asset cache that
``/in/assets`` links to with inotify (shared/notes/facts.md: watches on a bind-mounted host directory report the
container's opens, read-only mounts included; watches are per directory, so every directory gets its own). From
the ``IN_OPEN`` events it records which annotation, asset, index and model files the image opened, and whether it
listed ``/in/assets`` (``IN_OPEN|IN_ISDIR`` on the cache's top directory or one of its ``<xx>`` folders: opening a
directory is what ``os.listdir``/``os.scandir``/``glob`` do; opening a file by path does not open its folders).
The summary (:func:`summarize`) lands on ``RunOutcome.inputs_opened`` and is judged by
``contracts/inputs.py`` (IN-11, IN-12, IN-13, LC-04).

Why a ctypes binding and not ``inotify_simple``: the audit needs three libc calls (``inotify_init1``,
``inotify_add_watch`` and ``read`` on the fd) and a 16-byte header parser; ``inotify_simple`` is itself a thin
ctypes wrapper of the same calls, so depending on it would add a package to install (the suite must install
offline from the project's own files) for about 30 lines, without making anything safer.

Only ``IN_OPEN`` is watched: ``IN_ACCESS`` fires on every ``read()`` (thousands of events per image file) and
tells nothing more, since nothing can be read or mapped without an open first. Memory is bounded: distinct paths
are kept up to :data:`MAX_DISTINCT` per kind and events are only counted; a queue overflow (the kernel dropped
events, ``/proc/sys/fs/inotify/max_queued_events``) marks the audit incomplete. When inotify is unavailable or
refuses a watch (``max_user_watches``/``max_user_instances`` reached), the run is recorded as *not audited*,
which the checks treat as not applicable, never as a failure.

The suite must not open the watched files itself while the watch runs: the watch is started right before the
container starts and stopped right after it exits (``execution.RunExecution._run_once``); the live monitor sampler
reads only ``/out``, and ``tree_digest`` of ``/in`` and the cache runs outside that window.
"""
from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import select
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import guard
from .errors import UnsafeOutput

# the ctypes binding is shared with the monitor sampler (inotify.py)
from .inotify import (IN_CLOEXEC, IN_DONT_FOLLOW, IN_IGNORED, IN_ISDIR, IN_NONBLOCK, IN_ONLYDIR, IN_OPEN,
                      IN_Q_OVERFLOW)
from .inotify import Libc, libc, split_events
from .model import TaskShape

WATCH_MASK = IN_OPEN | IN_ONLYDIR | IN_DONT_FOLLOW
MAX_DISTINCT = 100_000  # distinct paths kept per kind (files opened, directories listed)
MAX_WALK = 1_000_000  # entries walked per tree to find its folders (the suite's trees: hundreds to thousands)
MAX_WATCHES = 20_000  # directories watched per run; more: not audited (the suite's workspaces have a few hundred)
EXAMPLES = 5  # paths named in the summary per list (missed candidates, decoys opened, ...)
ENV_SWITCH = "YMIR_CONFORMANCE_AUDIT"  # "0": run without the audit (to measure its overhead, or to opt out)
IN_ROOT = "/in"
ASSETS = "/in/assets"
PREDICTIONS = "/in/predictions"


_LIBC: Libc | None = None  # the binding this module calls (tests replace it)


def _libc() -> Libc:
    global _LIBC
    if _LIBC is None:
        _LIBC = libc()
    return _LIBC


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass
class WatchResult:
    """What the container opened, in container paths, while the watch ran."""

    audited: bool
    problem: str = ""  # why the run is not audited, or why the audit is incomplete
    complete: bool = True  # False: the kernel dropped events (queue overflow) or a cap was hit
    opened: set[str] = field(default_factory=set)  # files, e.g. /in/annotations/ab/<sha1>.txt
    listed: set[str] = field(default_factory=set)  # directories opened (listed), e.g. /in/assets/ab
    events: int = 0
    watches: int = 0
    setup_s: float = 0.0  # walking the trees and adding the watches
    stop_s: float = 0.0  # draining and closing after the container exited
    busy_s: float = 0.0  # CPU time of the reader thread


class InputWatch:
    """An inotify watch on ``in_dir`` (links not followed) and on the asset cache, read by a daemon thread.

    ``start`` never raises: when inotify cannot be set up, the result says why (not audited).
    """

    def __init__(self, in_dir: Path, asset_cache: Path | None = None) -> None:
        self.roots: list[tuple[Path, str]] = [(in_dir, IN_ROOT)]
        if asset_cache is not None:
            self.roots.append((asset_cache, ASSETS))
        self.result = WatchResult(audited=False)
        self._fd = -1
        self._wake_r = self._wake_w = -1
        self._dirs: dict[int, str] = {}  # watch descriptor -> container path of the directory
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._buf = b""

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> InputWatch:
        t0 = time.monotonic()
        if not enabled():
            self.result.problem = f"the input audit is switched off ({ENV_SWITCH}=0)"
            return self
        try:
            dirs = self._directories()
            if len(dirs) > MAX_WATCHES:
                self.result.problem = f"{len(dirs)} directories to watch, more than the audit's {MAX_WATCHES}"
                return self
            lib = _libc()
            fd = lib.init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            self._fd = fd
            for host, cpath in dirs:
                wd = lib.add_watch(fd, os.fsencode(host), WATCH_MASK)
                if wd < 0:
                    raise OSError(ctypes.get_errno(), f"inotify_add_watch {host}")
                self._dirs[wd] = cpath
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except Exception as exc:  # OSError: inotify's limits; AttributeError: a libc without inotify
            self._close()
            self.result.problem = _why_not(exc)
            return self
        self.result.audited = True
        self.result.watches = len(self._dirs)
        self._thread = threading.Thread(target=self._run, name="ymir-input-audit", daemon=True)
        self._thread.start()
        self.result.setup_s = time.monotonic() - t0
        return self

    def stop(self) -> WatchResult:
        """Read what is left in the queue, stop the thread, close the fd; idempotent."""
        t0 = time.monotonic()
        if self._thread is not None:
            self._stopping.set()
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
            self._thread.join(timeout=10)
            self._thread = None
            self._drain()
            self.result.stop_s = time.monotonic() - t0
        self._close()
        return self.result

    def __enter__(self) -> InputWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------------------
    def _directories(self) -> list[tuple[str, str]]:
        """(host path, container path) of every directory to watch, links never entered (:func:`guard.walk`).

        Collected before the first watch is added, so the suite's own walk (it opens each directory) is not
        mistaken for the image listing them."""
        dirs: list[tuple[str, str]] = []
        for root, cpath in self.roots:
            st = os.lstat(root)
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, f"{root} is not a directory")
            dirs.append((str(root), cpath))
            entries = 0
            for rel, est in guard.walk(root, max_entries=MAX_WALK):
                entries += 1
                if stat.S_ISDIR(est.st_mode):
                    dirs.append((str(root / rel), f"{cpath}/{rel}"))
            if entries >= MAX_WALK:  # the walk stopped early: some folders would go unwatched
                raise OSError(errno.EFBIG, f"more than {MAX_WALK} entries under {root}")
        return dirs

    def _run(self) -> None:
        t0 = time.thread_time()
        try:
            while not self._stopping.is_set():
                try:
                    ready, _, _ = select.select([self._fd, self._wake_r], [], [], 1.0)
                except (OSError, ValueError):
                    break
                if self._fd in ready:
                    self._drain()
        finally:
            self.result.busy_s += time.thread_time() - t0

    def _drain(self) -> None:
        if self._fd < 0:
            return
        while True:
            try:
                chunk = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            except OSError:
                return
            if not chunk:
                return
            self._parse(self._buf + chunk)

    def _parse(self, data: bytes) -> None:
        r = self.result
        events, self._buf = split_events(data)
        for wd, mask, raw in events:
            if mask & IN_Q_OVERFLOW:
                r.complete = False
                r.problem = "the kernel dropped events (inotify queue overflow): the counts are lower bounds"
                continue
            if mask & IN_IGNORED or not mask & IN_OPEN:
                continue
            base = self._dirs.get(wd)
            if base is None:
                continue
            r.events += 1
            name = os.fsdecode(raw)
            path = f"{base}/{name}" if name else base
            target = r.listed if mask & IN_ISDIR else r.opened
            if len(target) < MAX_DISTINCT:
                target.add(path)
            elif path not in target:
                r.complete = False
                r.problem = f"more than {MAX_DISTINCT} distinct paths opened: the counts are lower bounds"

    def _close(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._wake_r = self._wake_w = -1


def _why_not(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ("inotify refused a watch: the per-user limit /proc/sys/fs/inotify/max_user_watches is reached "
                "(raise it with sysctl fs.inotify.max_user_watches=...)")
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
        return ("inotify refused a new instance: the per-user limit /proc/sys/fs/inotify/max_user_instances is "
                "reached")
    if isinstance(exc, AttributeError):
        return "this system has no inotify"
    return f"inotify could not watch the inputs: {exc}"


# --------------------------------------------------------------------------------------------------------
# What was given versus what was opened
# --------------------------------------------------------------------------------------------------------


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path else ""


def _index(in_dir: Path, name: str) -> list[list[str]]:
    """The columns of each line of an index file the suite wrote (read through the guarded door all the same)."""
    try:
        text = guard.read_text(in_dir, name, guard.CAPS["mining-result"])
    except (OSError, UnsafeOutput):
        return []
    return [[c.strip() for c in ln.rstrip("\r").split("\t")] for ln in text.split("\n") if ln.strip()]


def _config_list(in_dir: Path, key: str) -> list[str]:
    try:
        cfg = guard.load_yaml(guard.read_text(in_dir, "config.yaml", guard.CAPS["result-yaml"]))
    except Exception:  # the suite wrote it; anything odd here just means nothing is listed
        return []
    value = cfg.get(key) if isinstance(cfg, dict) else None
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def coverage(listed: Iterable[str], opened: set[str]) -> dict[str, Any]:
    """{"opened": n, "listed": m, "missed": [first few listed but not opened]} over distinct listed paths."""
    wanted = list(dict.fromkeys(_norm(p) for p in listed if p))
    missed = [p for p in wanted if p not in opened]
    return {"opened": len(wanted) - len(missed), "listed": len(wanted), "missed": missed[:EXAMPLES]}


def _model_coverage(listed: list[str], opened: set[str], in_dir: Path) -> dict[str, Any]:
    """Model files listed in config.yaml. A listed path that does not exist on the host (a legacy 1.1 package is
    extracted flat while the config names ``<stage>/<file>``, IN-04) counts as opened when a file of that name
    was opened anywhere under /in/models."""
    by_name: dict[str, set[str]] = {}
    for p in opened:
        if p.startswith("/in/models/"):
            by_name.setdefault(posixpath.basename(p), set()).add(p)
    wanted = list(dict.fromkeys(_norm(p) for p in listed if p))
    missed = []
    for p in wanted:
        if p in opened:
            continue
        rel = p.removeprefix("/in/").lstrip("/")
        exists = guard.lstat_beneath(in_dir, rel) is not None if guard.plain_relpath(rel) else False
        if not exists and by_name.get(posixpath.basename(p)):
            continue
        missed.append(p)
    return {"opened": len(wanted) - len(missed), "listed": len(wanted), "missed": missed[:EXAMPLES]}


def summarize(result: WatchResult, in_dir: Path, asset_cache: Path | None, shape: TaskShape) -> dict[str, Any]:
    """The JSON-ready summary kept on ``RunOutcome.inputs_opened`` ({"audited": False, ...} when not audited)."""
    summary: dict[str, Any] = {"audited": result.audited, "complete": result.complete, "problem": result.problem}
    if not result.audited:
        return summary
    opened = result.opened
    summary.update(events=result.events, watches=result.watches, setup_s=round(result.setup_s, 4),
                   stop_s=round(result.stop_s, 4), busy_s=round(result.busy_s, 4))
    try:
        tsvs = sorted(n for n in os.listdir(in_dir) if n.endswith(".tsv"))
    except OSError:
        tsvs = []
    summary["index_files"] = {"opened": [f"/in/{n}" for n in tsvs if f"/in/{n}" in opened],
                              "present": [f"/in/{n}" for n in tsvs]}
    referenced: set[str] = set()  # every asset some index of this task names
    for name in tsvs:
        if name == "candidate-src-index.tsv":  # host paths (mining only): not for executors
            continue
        for cols in _index(in_dir, name):
            if cols and cols[0]:
                referenced.add(_norm(cols[0]))
    if shape.run_training:
        # the training split is judged on its own (IN-11): validation files opened say nothing about what the
        # model was trained on
        train, val = _index(in_dir, "train-index.tsv"), _index(in_dir, "val-index.tsv")
        for split, lines in (("train", train), ("val", val)):
            summary[f"{split}_annotations"] = coverage((c[1] for c in lines if len(c) > 1), opened)
            summary[f"{split}_assets"] = coverage((c[0] for c in lines if c), opened)
        summary["annotations"] = coverage((c[1] for c in train + val if len(c) > 1), opened)
        summary["assets"] = coverage((c[0] for c in train + val if c), opened)
        # the dataset's predictions (pred-*-index.tsv, /in/predictions): earlier models' outputs, not labels
        preds = sorted(p for p in opened if p.startswith(PREDICTIONS + "/")
                       or posixpath.basename(p).startswith("pred-") and posixpath.dirname(p) == IN_ROOT)
        summary["predictions"] = {"opened": len(preds), "examples": preds[:EXAMPLES]}
        pretrained = _config_list(in_dir, "pretrained_model_params")
        if pretrained:
            summary["models"] = {**_model_coverage(pretrained, opened, in_dir), "key": "pretrained_model_params"}
    else:
        summary["candidates"] = coverage((c[0] for c in _index(in_dir, "candidate-index.tsv") if c), opened)
        summary["models"] = {**_model_coverage(_config_list(in_dir, "model_params_path"), opened, in_dir),
                             "key": "model_params_path"}
    asset_dirs = sorted(d for d in result.listed if d == ASSETS or d.startswith(ASSETS + "/"))
    summary["assets_listed"] = bool(asset_dirs)
    summary["listed_dirs"] = asset_dirs[:EXAMPLES]
    decoys_present = 0
    if asset_cache is not None:
        for rel, st in guard.walk(asset_cache):
            if stat.S_ISREG(st.st_mode) and f"{ASSETS}/{rel}" not in referenced:
                decoys_present += 1
    decoys_opened = sorted(p for p in opened if p.startswith(ASSETS + "/") and p not in referenced)
    summary["decoys"] = {"opened": len(decoys_opened), "present": decoys_present,
                         "examples": decoys_opened[:EXAMPLES]}
    return summary


def watch_inputs(in_dir: Path, asset_cache: Path | None) -> InputWatch:
    """Start watching (never raises; see :class:`InputWatch`)."""
    return InputWatch(in_dir, asset_cache).start()


def finish(watch: InputWatch, in_dir: Path, asset_cache: Path | None, shape: TaskShape) -> dict[str, Any]:
    """Stop the watch and summarise; a failure of the audit itself degrades to 'not audited'."""
    try:
        result = watch.stop()
        t0 = time.monotonic()
        summary = summarize(result, in_dir, asset_cache, shape)
        if result.audited:
            summary["summary_s"] = round(time.monotonic() - t0, 4)
        return summary
    except Exception as exc:  # the audit must never cost a run its verdict
        return {"audited": False, "complete": False, "problem": f"the input audit failed: {exc!r}"}


def counts_line(summary: dict[str, Any]) -> str:
    """'train annotations 0/24, val annotations 8/8, images 32/32, index 2/6, decoys 0/4' (training),
    'candidates 8/8, model files 1/2, index 1/1, decoys 0/4, /in/assets LISTED' (infer/mining)."""
    if not summary:
        return ""
    if not summary.get("audited"):
        return f"inputs not audited: {summary.get('problem', '')}".rstrip(": ")
    parts = []
    split = isinstance(summary.get("train_annotations"), dict)  # training: the splits apart (IN-11)
    keys = (("train_annotations", "train annotations"), ("val_annotations", "val annotations")) if split else (
        ("annotations", "annotations"),)
    for key, label in (*keys, ("assets", "images"), ("candidates", "candidates"), ("models", "model files")):
        c = summary.get(key)
        if isinstance(c, dict):
            parts.append(f"{label} {c.get('opened', 0)}/{c.get('listed', 0)}")
    preds = summary.get("predictions") or {}
    if preds.get("opened"):
        parts.append(f"predictions opened {preds['opened']}")
    idx = summary.get("index_files") or {}
    parts.append(f"index {len(idx.get('opened', []))}/{len(idx.get('present', []))}")
    decoys = summary.get("decoys") or {}
    parts.append(f"decoys {decoys.get('opened', 0)}/{decoys.get('present', 0)}")
    if summary.get("assets_listed"):
        parts.append("/in/assets LISTED")
    if not summary.get("complete", True):
        parts.append("(incomplete)")
    return ", ".join(parts)


__all__ = ["InputWatch", "WatchResult", "counts_line", "coverage", "enabled", "finish", "summarize",
           "watch_inputs"]
