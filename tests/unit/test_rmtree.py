"""The workspace remover (ymir_conformance/rmtree.py): any depth, no link followed, failures returned, never raised."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ymir_conformance.rmtree import remove_tree, remove_tree_or_raise


def nest(top: Path, depth: int, name: str = "d") -> None:
    """``depth`` nested directories under ``top`` (made through descriptors: the path is far over PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("bottom")
    finally:
        os.close(fd)


def test_depth_10000_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "ws"
    top.mkdir()
    nest(top, 10_000)
    with pytest.raises(RecursionError):  # why the suite cannot use it
        import shutil
        shutil.rmtree(top, ignore_errors=True)
    assert remove_tree(top) is None
    assert not top.exists()


def test_links_are_removed_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    (outside / "sub").mkdir()
    (outside / "sub" / "keep.bin").write_bytes(b"x")
    lone = tmp_path / "host-file.txt"
    lone.write_text("also the host's")
    top = tmp_path / "ws"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "to-dir").symlink_to(outside)
    (top / "to-dir").symlink_to(outside)
    (top / "a" / "to-file").symlink_to(outside / "secret.txt")
    (top / "a" / "hardish").symlink_to(lone)
    (top / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(top / "a" / "fifo")
    assert remove_tree(top) is None
    assert not os.path.lexists(top)
    assert (outside / "secret.txt").read_text() == "host file"
    assert (outside / "sub" / "keep.bin").read_bytes() == b"x"
    assert lone.read_text() == "also the host's"


def test_top_level_link_is_unlinked_only(tmp_path: Path) -> None:
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "f").write_text("kept")
    link = tmp_path / "ws"
    link.symlink_to(outside)
    assert remove_tree(link) is None
    assert not os.path.lexists(link)
    assert (outside / "f").read_text() == "kept"


def test_wide_and_unreadable_directories(tmp_path: Path) -> None:
    top = tmp_path / "ws"
    for i in range(300):
        (top / f"d{i}" / "x").mkdir(parents=True)
        (top / f"d{i}" / "x" / "f").write_text("1")
    locked = top / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "f").write_text("1")
    os.chmod(locked / "inner", 0o000)
    os.chmod(locked, 0o500)
    assert remove_tree(top) is None
    assert not top.exists()


def test_last_name_goes_last_and_missing_is_fine(tmp_path: Path) -> None:
    top = tmp_path / "ws"
    top.mkdir()
    (top / ".ymir-owner.json").write_text("{}")
    nest(top, 50)
    assert remove_tree(top, last=".ymir-owner.json") is None
    assert not top.exists()
    assert remove_tree(top) is None  # already gone
    remove_tree_or_raise(top)


def test_a_file_path_is_unlinked(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    assert remove_tree(f) is None
    assert not f.exists()


def test_a_failure_is_returned_not_raised(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root deletes from read-only directories: no failure to provoke")
    parent = tmp_path / "p"
    (parent / "ws" / "sub").mkdir(parents=True)
    os.chmod(parent, 0o500)  # ws itself cannot be unlinked from p
    try:
        problem = remove_tree(parent / "ws")
        assert problem is not None and "could not be removed" in problem
        with pytest.raises(OSError):
            remove_tree_or_raise(parent / "ws")
    finally:
        os.chmod(parent, 0o700)


def test_a_mount_point_inside_is_reported_not_entered(tmp_path: Path) -> None:
    import subprocess

    top = tmp_path / "ws"
    mnt = top / "a" / "mnt"
    mnt.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "ymir-test", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount(8) to put a filesystem inside the tree")
    try:
        (mnt / "other-fs.txt").write_text("on another filesystem")
        problem = remove_tree(top)
        assert problem is not None and "mount point" in problem and str(top) in problem
        assert (mnt / "other-fs.txt").read_text() == "on another filesystem"
        with pytest.raises(OSError):
            remove_tree_or_raise(top)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    assert remove_tree(top) is None
