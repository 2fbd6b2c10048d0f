"""Build a delta patch (docs/formats/delta.md) from a source and a target image.

detools finds the matches (bsdiff's algorithm over a suffix array: its sequential patch,
uncompressed); this module cuts its operations at every ``segment_size`` bytes of output and
compresses each segment as its own zlib stream, so the device can apply the patch a segment at
a time and resume at any segment boundary.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import detools  # type: ignore[import-untyped]
from detools.common import unpack_size  # type: ignore[import-untyped]

from suture.delta import format as fmt
from suture.delta.errors import DeltaError

DEFAULT_SEGMENT_SIZE: Final = 32768
DEFAULT_WINDOW_BITS: Final = 10
MAX_IMAGE: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class Operation:
    """One bsdiff operation: diff bytes added to the source, extra bytes, a source seek."""

    diff: bytes
    extra: bytes
    adjust: int


def operations(source: bytes, target: bytes) -> Iterator[Operation]:
    """detools' sequential patch (no compression) between source and target, as operations."""
    out = io.BytesIO()
    detools.create_patch(io.BytesIO(source), io.BytesIO(target), out, compression="none")
    patch = io.BytesIO(out.getvalue())
    patch.read(1)  # patch type and compression
    to_size = unpack_size(patch)
    if to_size != len(target):
        raise DeltaError("detools' patch does not describe the target's size")
    if not to_size:
        return
    if unpack_size(patch) != 0:  # data-format patch: none was asked for
        raise DeltaError("detools' patch carries a data-format section")
    done = 0
    while done < to_size:
        diff = patch.read(unpack_size(patch))
        extra = patch.read(unpack_size(patch))
        adjust = unpack_size(patch)
        done += len(diff) + len(extra)
        yield Operation(diff, extra, adjust)


class _Segments:
    """Cuts the operations at every segment_size bytes of output."""

    def __init__(self, segment_size: int, window_bits: int, level: int, total: int) -> None:
        self.left = total  # target bytes still to emit
        self.segment_size = segment_size
        self.window_bits = window_bits
        self.level = level
        self.done: list[tuple[bytes, int]] = []  # (zlib stream, source position at start)
        self.raw = bytearray()
        self.start_pos = 0
        self.room = segment_size

    def close(self) -> None:
        c = zlib.compressobj(self.level, zlib.DEFLATED, self.window_bits, 9)
        self.done.append((c.compress(bytes(self.raw)) + c.flush(), self.start_pos))
        self.raw = bytearray()
        self.room = self.segment_size

    def put(self, data: bytes, pos: int) -> None:
        """Append to the current segment; its first bytes fix its source position."""
        if not self.raw:
            self.start_pos = pos
        self.raw += data

    def block(self, data: bytes, pos: int, diff: bool) -> int:
        """Emit a diff (or extra) block, split across segments; returns the source position."""
        i = 0
        while True:
            take = min(len(data) - i, self.room)
            self.put(fmt.uvarint(take) + data[i : i + take], pos)
            i += take
            self.room -= take
            self.left -= take
            if diff:
                pos += take
            if self.room == 0:
                self.close()
                if i == len(data):
                    return pos
                if not diff:
                    # the rest of an extra block starts a segment: an empty diff block first
                    self.put(fmt.uvarint(0), pos)
                continue
            return pos

    def operation(self, op: Operation, pos: int) -> int:
        if not self.left:
            return pos  # empty operations after the target's last byte
        pos = self.block(op.diff, pos, True)
        if not self.left:
            return pos
        if self.room == self.segment_size and not self.raw:
            # the diff ended a segment: the extra block opens the next one after an empty diff
            if not op.extra:
                return pos + op.adjust
            self.put(fmt.uvarint(0), pos)
        pos = self.block(op.extra, pos, False)
        if (self.room == self.segment_size and not self.raw) or not self.left:
            # the segment closed (the seek is in the next table entry), or the target is done
            return pos + op.adjust
        self.put(fmt.svarint(op.adjust), pos)
        return pos + op.adjust


def build(
    source: bytes,
    target: bytes,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    window_bits: int = DEFAULT_WINDOW_BITS,
    level: int = 9,
) -> bytes:
    """The patch from ``source`` to ``target``."""
    if len(source) > MAX_IMAGE or len(target) > MAX_IMAGE:
        raise DeltaError(f"images larger than {MAX_IMAGE} bytes")
    if not target:
        raise DeltaError("the target image is empty")
    segs = _Segments(segment_size, window_bits, level, len(target))
    header = fmt.Header(
        window_bits, segment_size, len(source), len(target),
        fmt.segments_for(len(target), segment_size), 0,
        hashlib.sha256(source).digest(), hashlib.sha256(target).digest(),
    )
    fmt.check_header(_with_size(header, 1 << 31))
    pos = 0
    for op in operations(source, target):
        pos = segs.operation(op, pos)
    if segs.raw:
        segs.close()
    if len(segs.done) != header.segments:
        raise DeltaError("the operations did not fill the target's segments")
    offset = header.body_offset
    entries = []
    for stream, start in segs.done:
        entries.append((offset, start))
        offset += len(stream)
    header = _with_size(header, offset)
    patch = header.encode() + fmt.encode_table(entries) + b"".join(s for s, _ in segs.done)
    if len(patch) != offset:
        raise DeltaError("patch layout does not add up")
    return patch


def _with_size(h: fmt.Header, patch_size: int) -> fmt.Header:
    return fmt.Header(h.window_bits, h.segment_size, h.source_size, h.target_size, h.segments,
                      patch_size, h.source_digest, h.target_digest)
