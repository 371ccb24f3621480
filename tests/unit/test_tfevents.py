"""The suite's own TensorBoard event reader (TR-14) on files written by the scaffold's writer, by tensorboard's and
tensorboardX's writers where installed (test-only), and on damaged and hostile bytes."""
from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ymir_conformance import tfevents
from ymir_conformance.scaffold import tfevents as scaffold_writer


def _only_file(logdir: Path) -> bytes:
    files = [p for p in logdir.iterdir() if "tfevents" in p.name]
    assert len(files) == 1, files
    return files[0].read_bytes()


def _scaffold_file(tmp_path: Path, n: int = 3) -> bytes:
    w = scaffold_writer.EventWriter(str(tmp_path))
    for step in range(1, n + 1):
        w.scalar("loss", 1.0 / step, step=step)
        w.scalar("mAP", 0.25 * step, step=step)
    w.close()
    return _only_file(tmp_path)


def test_crc32c_known_answer() -> None:
    assert tfevents.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert tfevents.crc32c(b"") == 0


def test_the_scaffold_writer(tmp_path: Path) -> None:
    t0 = time.time()
    found = tfevents.read_events(_scaffold_file(tmp_path))
    assert not found.truncated and not found.more
    header, *scalars = found.events
    assert header.file_version == "brain.Event:2" and header.values == ()
    assert [(e.step, e.values[0].tag, e.values[0].number) for e in scalars] == [
        (1, "loss", 1.0), (1, "mAP", 0.25), (2, "loss", 0.5), (2, "mAP", 0.5), (3, "loss", pytest.approx(1 / 3)),
        (3, "mAP", 0.75)]
    assert all(t0 - 1 <= e.wall_time <= time.time() + 1 for e in found.events)
    assert found.summaries


def test_tensorboards_own_writer(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path))
    writer.add_event(event_pb2.Event(wall_time=1.5, step=-3, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag="loss", simple_value=0.5)])))
    # tf.summary.scalar's form (TF2): a scalar tensor, in float_val or in tensor_content
    writer.add_event(event_pb2.Event(wall_time=2.5, step=7, summary=summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="acc", tensor=tensor_pb2.TensorProto(dtype=1, float_val=[0.75])),
        summary_pb2.Summary.Value(tag="lr", tensor=tensor_pb2.TensorProto(
            dtype=2, tensor_content=struct.pack("<d", 0.125)))])))
    writer.close()
    found = tfevents.read_events(_only_file(tmp_path))
    header, first, second = found.events
    assert header.file_version == "brain.Event:2"
    assert (first.wall_time, first.step, first.values) == (1.5, -3, (tfevents.Value("loss", 0.5),))
    assert (second.step, second.values) == (7, (tfevents.Value("acc", 0.75), tfevents.Value("lr", 0.125)))


def test_tensorboardx_writer(tmp_path: Path) -> None:
    tbx = pytest.importorskip("tensorboardX")
    w = tbx.SummaryWriter(str(tmp_path))
    for step in range(5):
        w.add_scalar("loss", 1.0 / (step + 1), step)
    w.close()
    found = tfevents.read_events(_only_file(tmp_path))
    assert [(e.step, e.values[0].number) for e in found.events if e.values] == [
        (s, pytest.approx(1.0 / (s + 1))) for s in range(5)]


def test_a_flipped_byte_is_a_checksum_error(tmp_path: Path) -> None:
    data = bytearray(_scaffold_file(tmp_path))
    data[-6] ^= 0x01  # inside the last record's data
    with pytest.raises(tfevents.EventFileError, match=r"record 7 \(byte \d+\): the checksum of its \d+ bytes"):
        tfevents.read_events(bytes(data))
    with pytest.raises(tfevents.EventFileError, match="checksum of its length"):
        tfevents.read_events(b"\x00garbage" * 50)


def test_a_file_cut_inside_a_record_ends_there(tmp_path: Path) -> None:
    data = _scaffold_file(tmp_path)
    found = tfevents.read_events(data[:-3])
    assert found.truncated and len(found.events) == 6
    assert tfevents.read_events(b"").events == ()


def test_max_events_and_oversized_records(tmp_path: Path) -> None:
    found = tfevents.read_events(_scaffold_file(tmp_path, n=10), max_events=4)
    assert len(found.events) == 4 and found.more
    header = struct.pack("<Q", 1 << 40)
    record = header + struct.pack("<I", tfevents.masked_crc32c(header))
    with pytest.raises(tfevents.EventFileError, match="claims 1099511627776 bytes"):
        tfevents.read_events(record + b"\x00" * 16)


def test_a_record_that_is_not_an_event() -> None:
    data = b"\x0f\x00"  # field 1, wire type 7
    header = struct.pack("<Q", len(data))
    record = header + struct.pack("<I", tfevents.masked_crc32c(header)) + data + struct.pack(
        "<I", tfevents.masked_crc32c(data))
    with pytest.raises(tfevents.EventFileError, match="record 1 .* is not an Event message: wire type 7"):
        tfevents.read_events(record)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_event_bytes_parse_or_are_refused(data: bytes) -> None:
    """A well-framed record with arbitrary content: an Event, or EventFileError; never another exception."""
    header = struct.pack("<Q", len(data))
    record = header + struct.pack("<I", tfevents.masked_crc32c(header)) + data + struct.pack(
        "<I", tfevents.masked_crc32c(data))
    try:
        tfevents.read_events(record)
    except tfevents.EventFileError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_file_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        tfevents.read_events(data)
    except tfevents.EventFileError:
        pass
