"""The delta patch format (docs/formats/delta.md), described once.

A patch turns one exact source image into one target image. It is a fixed header, a table with
one entry per output segment, and the segments: each segment is an independent zlib stream
(RFC 1950, the window given by the header) of bsdiff-style operations that produces exactly
``segment_size`` bytes of the target (the last one the remainder). A segment starts from the
source position its table entry gives, so the device can apply (and, after a power cut, resume
at) any segment without the ones before it, holding nothing but a fixed buffer and the
decompressor's window.

Operations (inside a segment's zlib stream), repeated until the segment is complete::

    uvarint diff_len, diff_len bytes   target = source[pos ...] + diff (bytewise, mod 256)
    uvarint extra_len, extra_len bytes target = extra (literal)
    svarint adjust                     pos += adjust (zigzag)

A segment stops as soon as its output is complete (after a diff or an extra block); the rest
of that operation is in the next segment. ``loader/loader/delta.py`` holds the device's copy of
these constants; tests/delta/test_format_copies.py checks it against this module both ways.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from suture.delta.errors import DeltaError

MAGIC: Final = b"SUDL"
VERSION: Final = 1
# magic, version, window bits, reserved, segment size, source size, target size, segments,
# patch size, source SHA-256, target SHA-256; then the CRC-32 of those bytes
HEADER_FORMAT: Final = "<4sBBHIIIII32s32s"
HEADER_SIZE: Final = 96  # struct.calcsize(HEADER_FORMAT) + 4 (CRC-32)
ENTRY_FORMAT: Final = "<Ii"  # patch offset of the segment's zlib stream, source position
ENTRY_SIZE: Final = 8
MIN_WINDOW_BITS: Final = 9
MAX_WINDOW_BITS: Final = 15
SECTOR: Final = 4096  # segment sizes are multiples of it: a segment ends on a flash sector
MAX_SEGMENTS: Final = 4096
MAX_VARINT_BYTES: Final = 5

# field offsets in the header
OFF_MAGIC: Final = 0
OFF_VERSION: Final = 4
OFF_WINDOW_BITS: Final = 5
OFF_RESERVED: Final = 6
OFF_SEGMENT_SIZE: Final = 8
OFF_SOURCE_SIZE: Final = 12
OFF_TARGET_SIZE: Final = 16
OFF_SEGMENTS: Final = 20
OFF_PATCH_SIZE: Final = 24
OFF_SOURCE_DIGEST: Final = 28
OFF_TARGET_DIGEST: Final = 60
OFF_HEADER_CRC: Final = 92


@dataclass(frozen=True)
class Header:
    """The header's fields."""

    window_bits: int
    segment_size: int
    source_size: int
    target_size: int
    segments: int
    patch_size: int
    source_digest: bytes
    target_digest: bytes

    def encode(self) -> bytes:
        body = struct.pack(
            HEADER_FORMAT, MAGIC, VERSION, self.window_bits, 0, self.segment_size,
            self.source_size, self.target_size, self.segments, self.patch_size,
            self.source_digest, self.target_digest,
        )
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def table_size(self) -> int:
        """Bytes of the segment table, its CRC-32 included."""
        return self.segments * ENTRY_SIZE + 4

    @property
    def body_offset(self) -> int:
        """Where the first segment starts."""
        return HEADER_SIZE + self.table_size


def segments_for(target_size: int, segment_size: int) -> int:
    return (target_size + segment_size - 1) // segment_size


def decode_header(data: bytes) -> Header:
    """The header at the start of ``data``; DeltaError when it is not a valid one."""
    if len(data) < HEADER_SIZE:
        raise DeltaError("patch shorter than its header")
    body = data[: HEADER_SIZE - 4]
    (crc,) = struct.unpack_from("<I", data, OFF_HEADER_CRC)
    if zlib.crc32(body) != crc:
        raise DeltaError("patch header CRC does not match")
    f = struct.unpack(HEADER_FORMAT, body)
    if f[0] != MAGIC or f[1] != VERSION or f[3] != 0:
        raise DeltaError("not a suture delta patch (magic, version or reserved field)")
    header = Header(f[2], f[4], f[5], f[6], f[7], f[8], f[9], f[10])
    check_header(header)
    return header


def check_header(h: Header) -> None:
    """The header's fields are consistent with each other."""
    if not MIN_WINDOW_BITS <= h.window_bits <= MAX_WINDOW_BITS:
        raise DeltaError(
            f"window bits {h.window_bits} outside {MIN_WINDOW_BITS}..{MAX_WINDOW_BITS}"
        )
    if h.segment_size < SECTOR or h.segment_size % SECTOR:
        raise DeltaError(f"segment size {h.segment_size} is not a multiple of {SECTOR}")
    if h.segments != segments_for(h.target_size, h.segment_size) or h.segments > MAX_SEGMENTS:
        raise DeltaError("segment count does not match the target size")
    if h.patch_size < h.body_offset:
        raise DeltaError("patch size smaller than its header and table")


def decode_table(data: bytes, h: Header) -> list[tuple[int, int]]:
    """The segment table after the header: (patch offset, source position) per segment."""
    end = HEADER_SIZE + h.table_size
    if len(data) < end:
        raise DeltaError("patch shorter than its segment table")
    raw = data[HEADER_SIZE : end - 4]
    (crc,) = struct.unpack_from("<I", data, end - 4)
    if zlib.crc32(raw) != crc:
        raise DeltaError("segment table CRC does not match")
    entries = [struct.unpack_from(ENTRY_FORMAT, raw, i * ENTRY_SIZE) for i in range(h.segments)]
    last = h.body_offset
    for offset, pos in entries:
        if offset < last or offset >= h.patch_size:
            raise DeltaError("segment offsets are not increasing inside the patch")
        if not 0 <= pos <= h.source_size:
            raise DeltaError("segment source position outside the source image")
        last = offset + 1
    return [(int(o), int(p)) for o, p in entries]


def encode_table(entries: list[tuple[int, int]]) -> bytes:
    raw = b"".join(struct.pack(ENTRY_FORMAT, o, p) for o, p in entries)
    return raw + struct.pack("<I", zlib.crc32(raw))


def uvarint(value: int) -> bytes:
    if value < 0 or value >= 1 << 32:
        raise DeltaError(f"varint value {value} outside 0..2**32-1")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def svarint(value: int) -> bytes:
    """Zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..."""
    if not -(1 << 31) <= value < 1 << 31:
        raise DeltaError(f"signed varint value {value} outside 32 bits")
    return uvarint((value << 1) ^ (value >> 31) if value >= 0 else ((-value) << 1) - 1)


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)
