"""Frames of the device link (docs/formats/device-link.md; the device side is
device/agent/transport/link.py). A frame is

    type (1 byte) | request id (u16 LE) | sequence (u16 LE) | payload (0..1024 bytes) |
    CRC-32 (u32 LE, IEEE as zlib.crc32) of everything before it

COBS-encoded (no 0x00 inside) and followed by one 0x00 delimiter on the wire.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from suture.errors import SutureError

MAX_PAYLOAD: Final = 1024
OVERHEAD: Final = 9  # type, request id, sequence, CRC-32
MAX_FRAME: Final = MAX_PAYLOAD + OVERHEAD
MAX_ENCODED: Final = MAX_FRAME + (MAX_FRAME + 253) // 254 + 1  # COBS + delimiter

REQUEST: Final = ord("Q")  # device -> gateway: request head "METHOD URL\n" + "Name: value\n"*
BODY: Final = ord("B")  # both ways: body bytes
END: Final = ord("E")  # both ways: end of a body
ACK: Final = ord("A")  # device -> gateway: pull (next sequence, window, flags)
STATUS: Final = ord("S")  # gateway -> device: response head "STATUS\n" + "name: value\n"*
NONE: Final = ord("X")  # gateway -> device: no such request
TYPES: Final = frozenset({REQUEST, BODY, END, ACK, STATUS, NONE})
F_RESEND: Final = 1

_HEAD: Final = struct.Struct("<BHH")
_CRC: Final = struct.Struct("<I")


class GatewayError(SutureError):
    """The gateway's errors: a frame that cannot be read, a gateway that cannot start."""


class FrameError(GatewayError):
    """Bytes between two delimiters that are not a frame. ``reason`` is one of ``cobs``
    (not valid COBS), ``short`` (under 9 bytes), ``long`` (payload over 1024 bytes), ``crc``
    (CRC-32 mismatch) or ``type`` (unknown frame type)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LinkFrame:
    kind: int
    rid: int
    seq: int
    payload: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(self.kind, self.rid, self.seq, self.payload)


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing of ``data`` (canonical: no trailing empty block
    after a full 254-byte one); the result holds no 0x00."""
    out = bytearray()
    i = 0
    n = len(data)
    full = False
    while True:
        z = data.find(b"\x00", i)
        end = n if z < 0 else z
        while end - i >= 254:
            out.append(0xFF)
            out += data[i : i + 254]
            i += 254
            full = True
        if z < 0 and i == end and full:
            return bytes(out)
        out.append(end - i + 1)
        out += data[i:end]
        full = False
        if z < 0:
            return bytes(out)
        i = z + 1


def cobs_decode(data: bytes) -> bytes:
    """The bytes ``data`` (one COBS-encoded frame, without its delimiter) stands for;
    FrameError("cobs") when it is not valid COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("cobs", "a 0x00 inside a COBS frame")
        if i + code > n:
            raise FrameError("cobs", "a COBS block runs past the end of the frame")
        block = data[i + 1 : i + code]
        if 0 in block:
            raise FrameError("cobs", "a 0x00 inside a COBS frame")
        out += block
        i += code
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(kind: int, rid: int, seq: int, payload: bytes = b"") -> bytes:
    """A frame as it goes on the wire: COBS and the 0x00 delimiter."""
    if kind not in TYPES:
        raise FrameError("type", f"unknown frame type {kind!r}")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError("long", f"frame payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    if not (0 <= rid <= 0xFFFF and 0 <= seq <= 0xFFFF):
        raise FrameError("type", "request id and sequence are 16-bit")
    body = _HEAD.pack(kind, rid, seq) + payload
    return cobs_encode(body + _CRC.pack(zlib.crc32(body))) + b"\x00"


def decode_frame(encoded: bytes) -> LinkFrame:
    """The frame in ``encoded`` (the bytes between two delimiters); FrameError otherwise."""
    raw = cobs_decode(encoded)
    if len(raw) < OVERHEAD:
        raise FrameError("short", f"a frame of {len(raw)} bytes (at least {OVERHEAD})")
    if len(raw) > MAX_FRAME:
        raise FrameError("long", f"a frame of {len(raw)} bytes (at most {MAX_FRAME})")
    (crc,) = _CRC.unpack_from(raw, len(raw) - 4)
    if zlib.crc32(raw[:-4]) != crc:
        raise FrameError("crc", "frame CRC mismatch")
    kind, rid, seq = _HEAD.unpack_from(raw)
    if kind not in TYPES:
        raise FrameError("type", f"unknown frame type {kind:#04x}")
    return LinkFrame(kind, rid, seq, bytes(raw[5:-4]))


class FrameReader:
    """Splits a byte stream at delimiters and decodes each frame. Empty frames (lone
    delimiters) are skipped; bytes beyond MAX_ENCODED without a delimiter are dropped up to the
    next one (the frame then reads as FrameError("long"))."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._over = False
        self.damaged = 0

    def feed(self, data: bytes) -> Iterator[LinkFrame | FrameError]:
        start = 0
        while True:
            z = data.find(b"\x00", start)
            if z < 0:
                self._take(data[start:])
                return
            self._take(data[start:z])
            start = z + 1
            if not self._buf and not self._over:
                continue
            chunk, over = bytes(self._buf), self._over
            self._buf.clear()
            self._over = False
            if over:
                self.damaged += 1
                yield FrameError("long", "a frame over the longest encoding")
                continue
            try:
                yield decode_frame(chunk)
            except FrameError as e:
                self.damaged += 1
                yield e

    def _take(self, part: bytes) -> None:
        if self._over:
            return
        if len(self._buf) + len(part) > MAX_ENCODED:
            self._over = True
            self._buf.clear()
            return
        self._buf += part
