"""TensorBoard event files without torch, tensorflow or tensorboardX: the TFRecord framing and the two protobuf
messages (Event, Summary.Value.simple_value) written by hand. Standard library only.

    w = EventWriter("/out/tensorboard")
    w.scalar("loss", 0.8, step=1)
    w.close()
"""
from __future__ import annotations

import os
import socket
import struct
import time
from typing import BinaryIO


def _table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(c: int) -> int:
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 2:  # length-delimited
        return key + _varint(len(payload)) + payload
    return key + payload


def _event(step: int, summary: bytes | None = None, file_version: str | None = None) -> bytes:
    body = _field(1, 1, struct.pack("<d", time.time())) + _field(2, 0, _varint(step))
    if file_version is not None:
        body += _field(3, 2, file_version.encode())
    if summary is not None:
        body += _field(5, 2, summary)
    return body


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked(crc32c(header))) + data + struct.pack("<I", _masked(crc32c(data)))


class EventWriter:
    """Appends scalar summaries to one ``events.out.tfevents.*`` file under ``log_dir``."""

    def __init__(self, log_dir: str) -> None:
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._f: BinaryIO = open(os.path.join(log_dir, name), "ab")
        self._f.write(_record(_event(0, file_version="brain.Event:2")))
        self._f.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        value_msg = _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", float(value)))
        self._f.write(_record(_event(int(step), summary=_field(1, 2, value_msg))))
        self._f.flush()

    def close(self) -> None:
        self._f.close()
