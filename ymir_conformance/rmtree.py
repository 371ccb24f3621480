"""Removing a workspace the image under test wrote into: any depth, no link followed, never a crash.

``shutil.rmtree`` recurses once per directory level (``RecursionError`` past about a thousand, which
``ignore_errors`` does not catch) and ``os.fwalk`` holds one descriptor per level (``EMFILE`` past the open-file
limit). :func:`remove_tree` walks iteratively and holds two descriptors at most, whatever the depth:

* it descends with ``openat(name, O_DIRECTORY | O_NOFOLLOW)`` relative to the directory it is in, after an
  ``lstat`` of the name: a symlink is unlinked as a link, never followed (a link to a host directory stays
  untouched, and so does the file a link points to);
* it climbs back with ``openat("..")`` and checks the parent it reaches is the one it came from (device and inode
  recorded on the way down): a directory moved during the walk ends the walk instead of deleting elsewhere;
* it stays on one filesystem (a mount point inside the tree is reported, not entered) and keeps, per level, only
  the names of the subdirectories still to visit (no descriptor);
* ``last``: one name at the top that is removed after everything else (the owner file ``.ymir-owner.json``: as
  long as anything is left, a later session can still tell whose leftover it is and reap it).

If the walk fails (a file it may not delete, a tree changed under it), ``rm -rf --one-file-system`` gets the
tree next; whatever is still there then is reported by the returned string, never raised: a cleanup failure is
a note for the user, not a verdict on the image and not a crash of the session.
"""
from __future__ import annotations

import errno
import os
import stat
import subprocess
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RM_TIMEOUT_S = 600.0


class TreeChanged(OSError):
    """The walk found the tree not as it left it (a directory moved under it): it stops, deleting nothing else."""


def _open_dir(name: str, dir_fd: int) -> int:
    """A directory entry ``name`` of ``dir_fd``, opened without following a link; unreadable ones are made
    readable first (an image may chmod 000 what it wrote; the suite may only delete what it can list)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)  # lstat said directory, and the image's container is gone
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def _empty(fd: int, root_dev: int, skip: str | None) -> tuple[list[str], list[str]]:
    """Unlink every non-directory entry of ``fd``; returns (subdirectory names to visit, problems)."""
    subdirs: list[str] = []
    problems: list[str] = []
    for name in os.listdir(fd):
        if name == skip:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if st.st_dev != root_dev:
                problems.append(f"{name!r} is a mount point (another filesystem): not entered")
            else:
                subdirs.append(name)
            continue
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except PermissionError:
            os.chmod(fd, 0o700)  # a directory the image made read-only (we own it: it is in our workspace)
            os.unlink(name, dir_fd=fd)
    return subdirs, problems


def _walk(parent_fd: int, top: str, last: str | None) -> list[str]:
    """Remove the directory ``top`` of ``parent_fd`` and everything under it; returns problems (raises OSError
    on what it cannot get past)."""
    problems: list[str] = []
    fd = _open_dir(top, parent_fd)
    try:
        st = os.fstat(fd)
        root_dev = st.st_dev
        ids: list[tuple[int, int]] = [(st.st_dev, st.st_ino)]  # the chain of directories from the top down
        names: list[str] = []  # the name of each level below the top, in its parent
        pending: list[list[str]] = []  # per level: subdirectories still to visit
        subdirs, found = _empty(fd, root_dev, last)
        problems += found
        pending.append(subdirs)
        while True:
            if pending[-1]:
                name = pending[-1].pop()
                try:
                    child = _open_dir(name, fd)
                except FileNotFoundError:
                    continue
                cst = os.fstat(child)
                if cst.st_dev != root_dev:  # swapped for a mount point between lstat and open
                    os.close(child)
                    problems.append(f"{name!r} became a mount point: not entered")
                    continue
                os.close(fd)
                fd = child
                ids.append((cst.st_dev, cst.st_ino))
                names.append(name)
                subdirs, found = _empty(fd, root_dev, None)
                problems += found
                pending.append(subdirs)
                continue
            if not names:
                break
            up = os.open("..", DIR_FLAGS, dir_fd=fd)
            ust = os.fstat(up)
            if (ust.st_dev, ust.st_ino) != ids[-2]:
                os.close(up)
                raise TreeChanged(errno.ESTALE, f"a directory moved during the removal (depth {len(names)})")
            os.close(fd)
            fd = up
            ids.pop()
            pending.pop()
            try:
                os.rmdir(names.pop(), dir_fd=fd)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    problems.append(f"a directory at depth {len(names) + 1} was not removed: {exc.strerror}")
        if last is not None:
            try:
                os.unlink(last, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)
    if not problems:
        os.rmdir(top, dir_fd=parent_fd)
    return problems


def remove_tree(path: Path | str, last: str | None = None) -> str | None:
    """Remove ``path`` (a directory, a file or a link: a link itself, never its target) and everything under it.

    Returns None when nothing is left, else what is left and why (never raises). ``last``: a name directly
    under ``path`` that is removed after everything else (see the module note).
    """
    path = Path(os.path.abspath(path))
    try:
        parent_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: its parent directory cannot be opened ({exc.strerror})"
    try:
        try:
            st = os.stat(path.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path.name, dir_fd=parent_fd)
            return None
        problems = _walk(parent_fd, path.name, last)
        if not problems:
            return None
        why = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
    except RecursionError:  # not from this code (it does not recurse): kept for safety, as a problem
        why = "recursion error"
    except OSError as exc:
        why = f"{exc.strerror or exc}"
    finally:
        os.close(parent_fd)
    return _rm_fallback(path, why)


def _rm_fallback(path: Path, why: str) -> str | None:
    """``rm -rf --one-file-system`` (coreutils' fts: no recursion, no link followed) after the walk failed."""
    try:
        proc = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True,
                              timeout=RM_TIMEOUT_S, stdin=subprocess.DEVNULL)
        rm_err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    except (OSError, subprocess.TimeoutExpired) as exc:
        rm_err = [str(exc)]
    if not os.path.lexists(path):
        return None
    detail = f"; rm -rf --one-file-system: {rm_err[0][:200]}" if rm_err else ""
    return f"{path} could not be removed completely ({why}{detail})"


def remove_tree_or_raise(path: Path | str, last: str | None = None) -> None:
    """:func:`remove_tree`, raising OSError with its message when something is left (for callers that must not
    go on over a stale tree, e.g. before reusing a directory)."""
    problem = remove_tree(path, last)
    if problem is not None:
        raise OSError(errno.ENOTEMPTY, problem)


__all__ = ["remove_tree", "remove_tree_or_raise"]
