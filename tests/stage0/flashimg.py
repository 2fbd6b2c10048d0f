"""Build and read stage0's flash contents (internal and external) for the tests.

The offsets mirror ``suture_layout_t`` in stage0's ports (docs/stage0.md, "Flash map").
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from suture.image import HEADER_SIZE, provision_record, sign_image
from suture.keys import PrivateKey

SECTOR = 4096
INTERNAL_SIZE = 0x100000
EXTERNAL_SIZE = 0x200000
PROVISION_OFF = 0xF000
COUNTER_OFF = 0x10000
LOADER_OFF = 0x20000
SLOT_SIZE = 0xE0000
JOURNAL_OFF = 0x0
STAGING_OFF = 0x10000
BACKUP_OFF = 0x100000

JOURNAL_MAGIC = 0x4C4E4A53
COMPONENT_LOADER = 1
STATE = {
    "IDLE": 1, "DOWNLOADING": 2, "STAGED": 3, "BACKUP": 4, "INSTALLING": 5, "TRIAL": 6,
    "CONFIRMED": 7, "REVERTING": 8, "REVERTED": 9, "FAILED": 10,
}
STATE_NAME = {v: k for k, v in STATE.items()}
FLAG_INSTALL_REQUESTED = 0x02
_REC = struct.Struct("<IIBBBBIII32sI")


@dataclass
class JournalRecord:
    seq: int
    component: int
    state: int
    boot_count: int
    flags: int
    progress: int
    size: int
    version: int
    digest: bytes

    @property
    def state_name(self) -> str:
        return STATE_NAME.get(self.state, str(self.state))


def journal_record(seq: int, component: int, state: str, *, flags: int = 0, size: int = 0,
                   version: int = 0, digest: bytes = bytes(32), boot_count: int = 0,
                   progress: int = 0) -> bytes:
    body = _REC.pack(JOURNAL_MAGIC, seq, component, STATE[state], boot_count, flags, progress,
                     size, version, digest, 0)
    return body + struct.pack("<I", zlib.crc32(body))


def read_journal(ext: bytes) -> list[JournalRecord]:
    """Every valid record, in seq order."""
    out = []
    for off in range(JOURNAL_OFF, JOURNAL_OFF + 2 * SECTOR, 64):
        raw = ext[off : off + 64]
        if len(raw) < 64 or struct.unpack_from("<I", raw)[0] != JOURNAL_MAGIC:
            continue
        if zlib.crc32(raw[:60]) != struct.unpack_from("<I", raw, 60)[0]:
            continue
        f = _REC.unpack(raw[:60])
        out.append(JournalRecord(f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]))
    return sorted(out, key=lambda r: r.seq)


def read_counter(internal: bytes) -> int:
    best = 0
    for off in range(COUNTER_OFF, COUNTER_OFF + 2 * SECTOR, 16):
        magic, value, inv, crc = struct.unpack_from("<IIII", internal, off)
        if (magic == 0x52544353 and inv == (~value & 0xFFFFFFFF)
                and zlib.crc32(internal[off : off + 12]) == crc):
            best = max(best, value)
    return best


def put(buf: bytearray, off: int, data: bytes) -> None:
    buf[off : off + len(data)] = data


def make_image(key: PrivateKey, body: bytes, *, counter: int, load_address: int,
               version: tuple[int, int, int] | None = None) -> bytes:
    return sign_image(body, private_key=key, version=version or (1, 0, counter),
                      security_counter=counter, load_address=load_address)


def blank(size: int) -> bytearray:
    return bytearray(b"\xff" * size)


def provisioned_internal(key: PrivateKey, loader: bytes | None) -> bytearray:
    internal = blank(INTERNAL_SIZE)
    put(internal, PROVISION_OFF, provision_record(key.public_key()))
    if loader is not None:
        put(internal, LOADER_OFF, loader)
    return internal


def staged_external(new: bytes | None, *, install: bool = True) -> bytearray:
    import hashlib

    ext = blank(EXTERNAL_SIZE)
    if new is not None:
        put(ext, STAGING_OFF, new)
        put(ext, JOURNAL_OFF, journal_record(
            1, COMPONENT_LOADER, "STAGED", flags=FLAG_INSTALL_REQUESTED if install else 0,
            size=len(new), version=struct.unpack_from("<I", new, 12)[0],
            digest=hashlib.sha256(new).digest()))
    return ext


def append_record(ext: bytearray, record: bytes) -> None:
    """Append like a writer that never fills a sector (the tests write a few records)."""
    records = read_journal(bytes(ext))
    for off in range(JOURNAL_OFF, JOURNAL_OFF + 2 * SECTOR, 64):
        if ext[off : off + 64] == b"\xff" * 64 and (
            not records or off > max(_offsets(ext))):
            put(ext, off, record)
            return
    raise AssertionError("journal full")


def _offsets(ext: bytearray) -> list[int]:
    return [off for off in range(JOURNAL_OFF, JOURNAL_OFF + 2 * SECTOR, 64)
            if ext[off : off + 64] != b"\xff" * 64]


def header_digest(image_or_slot: bytes) -> bytes:
    return bytes(image_or_slot[36:68])


def slot_image(flash: bytes, off: int) -> bytes:
    size = struct.unpack_from("<I", flash, off + 20)[0]
    return bytes(flash[off : off + HEADER_SIZE + size])


def counter_record(value: int) -> bytes:
    body = struct.pack("<III", 0x52544353, value, ~value & 0xFFFFFFFF)
    return body + struct.pack("<I", zlib.crc32(body))
