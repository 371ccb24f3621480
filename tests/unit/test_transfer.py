"""The guarded extractor of archive transfer (transfer.extract_archive), the transfer choice, and the xdist
engine / GPU shares (engines.worker_share): no Docker needed."""
from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ymir_conformance.engines import check_gpu_split, parse_engines, worker_share
from ymir_conformance.errors import SettingsError
from ymir_conformance.transfer import TransferError, choose, extract_archive, is_local_url, read_single


def tar_stream(*members: tuple[tarfile.TarInfo, bytes | None]) -> Iterator[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return iter([raw[i:i + 1000] for i in range(0, len(raw), 1000)])  # in chunks, like get_archive


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def test_regular_files_and_directories_are_extracted(tmp_path: Path) -> None:
    got = extract_archive(tar_stream((member("out", tarfile.DIRTYPE, mode=0o777), None),
                                     (member("out/models", tarfile.DIRTYPE), None),
                                     (member("out/models/result.yaml"), b"a: 1\n"),
                                     (member("out/monitor.txt", mode=0o6755), b"t\t1\t1.0\t3\n")),
                          tmp_path, strip="out")
    assert (tmp_path / "models" / "result.yaml").read_bytes() == b"a: 1\n"
    assert (tmp_path / "monitor.txt").stat().st_mode & 0o7777 == 0o755  # setuid/setgid dropped
    assert (got.files, got.dirs, got.refused) == (2, 1, [])


def test_names_that_climb_out_or_are_absolute_are_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    got = extract_archive(tar_stream((member("out/../escaped"), b"x"), (member("/etc/evil"), b"x"),
                                     (member("other/file"), b"x"), (member("out/a\nb"), b"x")), dest, strip="out")
    assert not (tmp_path / "escaped").exists() and list(dest.iterdir()) == []
    assert len(got.refused) == 4, got.refused


def test_a_link_is_recreated_inert_and_never_written_through(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    got = extract_archive(tar_stream((member("out/models", tarfile.SYMTYPE, link=str(outside)), None),
                                     (member("out/models/stolen.pt"), b"x"),
                                     (member("out/passwd", tarfile.SYMTYPE, link="/etc/passwd"), None),
                                     (member("out/passwd"), b"overwrite")), dest, strip="out")
    assert os.readlink(dest / "models") == str(outside) and list(outside.iterdir()) == []
    assert os.readlink(dest / "passwd") == "/etc/passwd"  # the second member did not write through it
    assert len(got.refused) == 2 and got.links == 2, got.refused


def test_an_existing_link_of_the_suite_is_not_written_through(tmp_path: Path) -> None:
    dest, target = tmp_path / "dest", tmp_path / "tensorboard-host"
    dest.mkdir()
    target.mkdir()
    os.symlink(target, dest / "tensorboard")
    got = extract_archive(tar_stream((member("out/tensorboard/evil"), b"x"),), dest, strip="out")
    assert list(target.iterdir()) == [] and len(got.refused) == 1


def test_hard_links_devices_and_oversize_files_are_refused(tmp_path: Path) -> None:
    got = extract_archive(tar_stream((member("out/a"), b"x"), (member("out/h", tarfile.LNKTYPE, link="out/a"), None),
                                     (member("out/dev", tarfile.CHRTYPE), None), (member("out/big"), b"y" * 100)),
                          tmp_path, strip="out", file_cap=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert [r.split(" ", 1)[0] for r in got.refused] == ["out/h", "out/dev", "out/big"], got.refused


def test_member_count_and_total_caps(tmp_path: Path) -> None:
    got = extract_archive(tar_stream(*[(member(f"out/f{i}"), b"12345") for i in range(5)]), tmp_path, strip="out",
                          max_members=3)
    assert got.files == 3 and "more than 3" in got.refused[-1]
    got = extract_archive(tar_stream(*[(member(f"out/g{i}"), b"12345") for i in range(5)]), tmp_path, strip="out",
                          total_cap=12)
    assert got.files == 2 and len(got.refused) == 3


def test_the_executor_log_is_appended_not_replaced(tmp_path: Path) -> None:
    log = tmp_path / "ymir-executor-out.log"
    log.write_text("from stdout\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        extract_archive(tar_stream((member("out/ymir-executor-out.log"), b"written by the image\n"),), tmp_path,
                        strip="out", appends={"ymir-executor-out.log": fd})
    finally:
        os.close(fd)
    assert log.read_text() == "from stdout\nwritten by the image\n"


def test_a_broken_stream_is_a_transfer_error(tmp_path: Path) -> None:
    with pytest.raises(TransferError):
        extract_archive(iter([b"not a tar" * 100]), tmp_path, strip="out")


def test_read_single_caps_and_refuses_non_regular() -> None:
    assert read_single(tar_stream((member("monitor.txt"), b"abcdef"),), 4) == b"abcd"
    assert read_single(tar_stream((member("monitor.txt", tarfile.SYMTYPE, link="/etc/x"), None),), 4) is None


def test_transfer_choice() -> None:
    def never() -> str | None:
        raise AssertionError("no probe needed")

    assert choose("archive", "unix:///x.sock", never) == "archive"
    assert choose("auto", "tcp://gpu-7:2376", never) == "archive"
    assert choose("auto", "unix:///x.sock", lambda: None) == "bind"
    assert choose("auto", "unix:///x.sock", lambda: "hidden") == "archive"
    with pytest.raises(TransferError, match="--ymir-transfer=archive"):
        choose("bind", "unix:///x.sock", lambda: "hidden")
    assert is_local_url("unix:///var/run/docker.sock") and not is_local_url("ssh://me@gpu-7")


def test_xdist_workers_take_disjoint_gpu_slices() -> None:
    gpus = ("0", "1", "2", "3")
    shares = [worker_share({"workerid": f"gw{k}", "workercount": 2}, (), gpus)[1] for k in range(2)]
    assert shares == [("0", "1"), ("2", "3")]
    shares = [worker_share({"workerid": f"gw{k}", "workercount": 3}, (), gpus)[1] for k in range(3)]
    assert shares == [("0",), ("1",), ("2",)]  # uneven: the leftover GPU stays unused
    assert worker_share(None, (), gpus) == ((), gpus)  # no xdist: everything
    with pytest.raises(SettingsError, match="each worker needs a GPU"):
        worker_share({"workerid": "gw2", "workercount": 3}, (), ("0", "1"))


def test_xdist_workers_bind_to_engines_and_share_their_gpus() -> None:
    engines = ("unix:///a.sock", "tcp://b:2376")
    got = [worker_share({"workerid": f"gw{k}", "workercount": 4}, engines, ("0", "1")) for k in range(4)]
    assert got == [(("unix:///a.sock",), ("0",)), (("tcp://b:2376",), ("0",)),
                   (("unix:///a.sock",), ("1",)), (("tcp://b:2376",), ("1",))]
    assert check_gpu_split(2, 4, 2) is None and check_gpu_split(1, 4, 2) is not None


def test_engine_urls_are_validated() -> None:
    assert parse_engines("unix:///a.sock, tcp://b:2376", "x") == ("unix:///a.sock", "tcp://b:2376")
    with pytest.raises(SettingsError):
        parse_engines("b:2376", "x")
    with pytest.raises(SettingsError):
        parse_engines("unix:///a.sock,unix:///a.sock", "x")
