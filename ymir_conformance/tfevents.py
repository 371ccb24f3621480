"""TensorBoard event files read without tensorboard (TR-14): the TFRecord framing and the few protobuf fields of
``Event`` and ``Summary`` the suite looks at, decoded by hand. Standard library only.

A TFRecord file is a sequence of records::

    uint64 length (little endian) | uint32 masked crc32c(length bytes) | data[length] | uint32 masked crc32c(data)

and each record's data is one ``tensorflow.Event`` message (tensorboard/compat/proto/event.proto)::

    Event:   1 wall_time double | 2 step int64 | 3 file_version string | 5 summary Summary | (others skipped)
    Summary: 1 value repeated Value
    Value:   1 tag string | 2 simple_value float | 8 tensor TensorProto | (others: image, histo, audio, ...)
    TensorProto: 1 dtype | 4 tensor_content bytes | 5 float_val packed float | 6 double_val packed double

What the image wrote is read as bytes through the guarded door (``guard.read_bytes``, capped) by the caller;
this module only parses bytes. Like TensorBoard, a record cut short at the end of the file (a writer that was
still writing) ends the file; a checksum that does not match, or a record that is not an Event, is an error.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_RECORD = 16 * 1024 * 1024  # one event: scalars are tens of bytes, an image summary some hundred KiB


class EventFileError(ValueError):
    """The bytes are not a TensorBoard event file (what is wrong, and at which byte)."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # CRC-32C (Castagnoli), reflected
        table.append(c)
    return tuple(table)


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked checksum: rotate right by 15 and add a constant."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclass(frozen=True)
class Value:
    """One ``Summary.Value``: its tag and, for a scalar, the number (simple_value or a one-float tensor)."""
    tag: str
    number: float | None


@dataclass(frozen=True)
class Event:
    wall_time: float
    step: int
    file_version: str | None
    values: tuple[Value, ...]  # empty for events without a summary (the file header, graphs, session logs)


@dataclass(frozen=True)
class EventFile:
    events: tuple[Event, ...]
    truncated: bool  # the file ended inside a record (TensorBoard stops there too)
    more: bool  # reading stopped at max_events

    @property
    def summaries(self) -> bool:
        return any(e.values for e in self.events)


# -- protobuf wire format ---------------------------------------------------------------------------------------

def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise EventFileError("a varint runs past the end of its message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise EventFileError("a varint longer than 10 bytes")


def fields(buf: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message: an int for varint/fixed fields (fixed64 and
    fixed32 as their raw little-endian integer), bytes for length-delimited ones."""
    end = len(buf) if end is None else end
    pos = start
    out: list[tuple[int, int, int | bytes]] = []
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise EventFileError("a field numbered 0")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise EventFileError("a 64-bit field runs past the end of its message")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise EventFileError("a length-delimited field runs past the end of its message")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > end:
                raise EventFileError("a 32-bit field runs past the end of its message")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise EventFileError(f"wire type {wire} (field {number}) is not used by Event messages")
        out.append((number, wire, value))
    return out


def _f32(raw: int) -> float:
    return float(struct.unpack("<f", raw.to_bytes(4, "little"))[0])


def _f64(raw: int) -> float:
    return float(struct.unpack("<d", raw.to_bytes(8, "little"))[0])


def _tensor_number(buf: bytes) -> float | None:
    """The number of a one-value float/double TensorProto (what tf.summary.scalar writes), else None."""
    dtype = 0
    numbers: list[float] = []
    content = b""
    for number, wire, value in fields(buf):
        if isinstance(value, int):
            if number == 1 and wire == 0:
                dtype = value
            elif number == 5 and wire == 5:
                numbers.append(_f32(value))
            elif number == 6 and wire == 1:
                numbers.append(_f64(value))
        elif number == 4:
            content = value
        elif number == 5:  # packed float_val
            numbers += [v for (v,) in struct.iter_unpack("<f", value[:len(value) // 4 * 4])]
        elif number == 6:  # packed double_val
            numbers += [v for (v,) in struct.iter_unpack("<d", value[:len(value) // 8 * 8])]
    if not numbers and content:
        if dtype == 1 and len(content) == 4:  # DT_FLOAT
            numbers.append(struct.unpack("<f", content)[0])
        elif dtype == 2 and len(content) == 8:  # DT_DOUBLE
            numbers.append(struct.unpack("<d", content)[0])
    return float(numbers[0]) if len(numbers) == 1 else None


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise EventFileError("a string field with a non-string wire type")
    return value.decode("utf-8", "replace")


def _value(buf: bytes) -> Value:
    tag, number = "", None
    for field, wire, value in fields(buf):
        if field == 1:
            tag = _text(value)
        elif field == 2 and wire == 5 and isinstance(value, int):
            number = _f32(value)
        elif field == 8 and isinstance(value, bytes):
            number = _tensor_number(value)
    return Value(tag, number)


def parse_event(data: bytes) -> Event:
    """One ``Event`` message."""
    wall_time, step, version = 0.0, 0, None
    values: list[Value] = []
    for field, wire, value in fields(data):
        if field == 1 and wire == 1 and isinstance(value, int):
            wall_time = _f64(value)
        elif field == 2 and wire == 0 and isinstance(value, int):
            step = value - (1 << 64) if value >= 1 << 63 else value  # int64
        elif field == 3:
            version = _text(value)
        elif field == 5:
            if not isinstance(value, bytes):
                raise EventFileError("Event.summary is not a message")
            values += [_value(v) for f, _, v in fields(value) if f == 1 and isinstance(v, bytes)]
    return Event(wall_time, step, version, tuple(values))


def read_events(data: bytes, max_events: int = 10_000) -> EventFile:
    """The events of one event file's bytes, at most ``max_events``; raises :class:`EventFileError` naming the
    record and byte where the framing or a checksum is wrong."""
    events: list[Event] = []
    pos, size = 0, len(data)
    while pos < size:
        if len(events) >= max_events:
            return EventFile(tuple(events), False, True)
        n = len(events) + 1
        if pos + 12 > size:
            return EventFile(tuple(events), True, False)
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked_crc32c(header) != length_crc:
            raise EventFileError(f"record {n} (byte {pos}): the checksum of its length does not match: not a "
                                 "TFRecord file, or a corrupted one")
        if length > MAX_RECORD:
            raise EventFileError(f"record {n} (byte {pos}) claims {length} bytes, over the {MAX_RECORD} this suite "
                                 "reads of one event")
        start, stop = pos + 12, pos + 12 + length
        if stop + 4 > size:
            return EventFile(tuple(events), True, False)
        record = data[start:stop]
        (data_crc,) = struct.unpack("<I", data[stop:stop + 4])
        if masked_crc32c(record) != data_crc:
            raise EventFileError(f"record {n} (byte {pos}): the checksum of its {length} bytes does not match")
        try:
            events.append(parse_event(record))
        except EventFileError as exc:
            raise EventFileError(f"record {n} (byte {pos}) is not an Event message: {exc}") from None
        pos = stop + 4
    return EventFile(tuple(events), False, False)
