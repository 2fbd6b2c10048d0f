"""Decode the update journal (docs/formats/journal.md) from an external flash image.

The constants are a copy of ``suture/formats/journal.toml``, the one description of the
record, checked both ways by tests/formats/test_journal_copies.py.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag

MAGIC = 0x4C4E4A53
RECORD_SIZE = 64
CRC_OFFSET = 60  # the CRC-32 of bytes 0..59 is stored here
RECORD_FORMAT = "<IIBBBBIII32sI"  # bytes 0..59


class State(IntEnum):
    """Journal states (docs/formats/journal.md)."""

    IDLE = 1
    DOWNLOADING = 2
    STAGED = 3
    BACKUP = 4
    INSTALLING = 5
    TRIAL = 6
    CONFIRMED = 7
    REVERTING = 8
    REVERTED = 9
    FAILED = 10


class Component(IntEnum):
    """What a journal record is about."""

    APP = 0
    LOADER = 1
    NVM = 2


class Flag(IntFlag):
    """Journal record flags."""

    REVERT_REQUESTED = 0x01
    INSTALL_REQUESTED = 0x02
    KEEP_BACKUP = 0x04


@dataclass(frozen=True)
class JournalRecord:
    """One valid journal record."""

    seq: int
    component: Component
    state: State
    boot_count: int
    flags: Flag
    progress: int
    size: int
    version: int
    digest: bytes
    sector: int
    slot: int

    @classmethod
    def decode(cls, raw: bytes, sector: int = 0, slot: int = 0) -> JournalRecord | None:
        """The record in 64 bytes, or None when empty or torn."""
        if len(raw) != RECORD_SIZE:
            return None
        fields = struct.unpack(RECORD_FORMAT, raw[:CRC_OFFSET])
        (crc,) = struct.unpack_from("<I", raw, CRC_OFFSET)
        if fields[0] != MAGIC or crc != zlib.crc32(raw[:CRC_OFFSET]):
            return None
        try:
            component = Component(fields[2])
            state = State(fields[3])
        except ValueError:
            return None
        return cls(
            seq=fields[1],
            component=component,
            state=state,
            boot_count=fields[4],
            flags=Flag(fields[5]),
            progress=fields[6],
            size=fields[7],
            version=fields[8],
            digest=bytes(fields[9]),
            sector=sector,
            slot=slot,
        )


def read_journal(image: bytes, offset: int, sector_size: int) -> list[JournalRecord]:
    """Every valid record of the two journal sectors at ``offset``, in ``seq`` order."""
    records: list[JournalRecord] = []
    for s in range(2):
        base = offset + s * sector_size
        for i in range(sector_size // RECORD_SIZE):
            raw = image[base + i * RECORD_SIZE : base + (i + 1) * RECORD_SIZE]
            rec = JournalRecord.decode(raw, s, i)
            if rec is not None:
                records.append(rec)
    return sorted(records, key=lambda r: r.seq)
