"""The host's applier of a delta patch: the reference the device's applier
(``loader/loader/delta.py``) is tested against, and the check a builder runs on every patch
before it is published."""

from __future__ import annotations

import hashlib
import zlib

from suture.delta import format as fmt
from suture.delta.errors import DeltaError


class _Ops:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def uvarint(self) -> int:
        value = shift = 0
        for _ in range(fmt.MAX_VARINT_BYTES):
            if self.i >= len(self.data):
                raise DeltaError("segment ends inside an operation")
            b = self.data[self.i]
            self.i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if value >= 1 << 32:
                    raise DeltaError("varint larger than 32 bits")
                return value
            shift += 7
        raise DeltaError("varint longer than 5 bytes")

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.data):
            raise DeltaError("segment ends inside a block")
        out = self.data[self.i : self.i + n]
        self.i += n
        return out


def apply(source: bytes, patch: bytes) -> bytes:
    """The target image; DeltaError when the patch is malformed, is not for ``source`` or does
    not produce its target digest."""
    h = fmt.decode_header(patch)
    if len(patch) != h.patch_size:
        raise DeltaError("patch length differs from its header's")
    if len(source) != h.source_size or hashlib.sha256(source).digest() != h.source_digest:
        raise DeltaError("the source image is not the patch's source")
    table = fmt.decode_table(patch, h)
    out = bytearray()
    for k, (offset, pos) in enumerate(table):
        end = table[k + 1][0] if k + 1 < len(table) else h.patch_size
        d = zlib.decompressobj(h.window_bits)
        try:
            raw = d.decompress(patch[offset:end])
        except zlib.error as exc:
            raise DeltaError(f"segment {k}: {exc}") from None
        if not d.eof or d.unused_data:
            raise DeltaError(f"segment {k}: zlib stream does not end at the segment's end")
        want = min(h.segment_size, h.target_size - k * h.segment_size)
        ops = _Ops(raw)
        got = 0
        while True:
            n = ops.uvarint()
            if got + n > want:
                raise DeltaError(f"segment {k}: diff block past the segment's end")
            if pos < 0 or pos + n > h.source_size:
                raise DeltaError(f"segment {k}: diff block outside the source image")
            diff = ops.take(n)
            out += bytes((a + b) & 0xFF for a, b in zip(diff, source[pos : pos + n], strict=True))
            pos += n
            got += n
            if got == want:
                break
            n = ops.uvarint()
            if got + n > want:
                raise DeltaError(f"segment {k}: extra block past the segment's end")
            out += ops.take(n)
            got += n
            if got == want:
                break
            pos += fmt.unzigzag(ops.uvarint())
        if ops.i != len(raw):
            raise DeltaError(f"segment {k}: bytes after its last operation")
    if hashlib.sha256(out).digest() != h.target_digest:
        raise DeltaError("the result does not match the target digest")
    return bytes(out)
