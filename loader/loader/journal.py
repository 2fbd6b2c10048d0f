# The update journal (docs/formats/journal.md). host/suture/formats/journal.toml is the one
# description of the record; this module's constants are a copy of it, checked both ways by
# tests/formats/test_journal_copies.py (a constant changed, missing or added here fails it).
import struct
from binascii import crc32

from micropython import const

from loader.errors import StateError

MAGIC = const(0x4C4E4A53)
RECORD_SIZE = const(64)
CRC_OFFSET = const(60)
# magic seq component state boot_count flags progress size version digest reserved
_FMT = "<IIBBBBIII32sI"

# offsets (docs/formats/journal.md)
OFF_MAGIC = const(0)
OFF_SEQ = const(4)
OFF_COMPONENT = const(8)
OFF_STATE = const(9)
OFF_BOOT_COUNT = const(10)
OFF_FLAGS = const(11)
OFF_PROGRESS = const(12)
OFF_SIZE = const(16)
OFF_VERSION = const(20)
OFF_DIGEST = const(24)
OFF_RESERVED = const(56)
OFF_CRC = const(60)

COMPONENT_APP = const(0)
COMPONENT_LOADER = const(1)
COMPONENT_NVM = const(2)
COMPONENT_NAMES = {0: "application", 1: "loader", 2: "nvm"}

IDLE = const(1)
DOWNLOADING = const(2)
STAGED = const(3)
BACKUP = const(4)
INSTALLING = const(5)
TRIAL = const(6)
CONFIRMED = const(7)
REVERTING = const(8)
REVERTED = const(9)
FAILED = const(10)

STATE_NAMES = {
    1: "IDLE",
    2: "DOWNLOADING",
    3: "STAGED",
    4: "BACKUP",
    5: "INSTALLING",
    6: "TRIAL",
    7: "CONFIRMED",
    8: "REVERTING",
    9: "REVERTED",
    10: "FAILED",
}

FLAG_REVERT_REQUESTED = const(0x01)
FLAG_INSTALL_REQUESTED = const(0x02)
FLAG_KEEP_BACKUP = const(0x04)

CLOSED = (IDLE, CONFIRMED, REVERTED, FAILED)
ZERO_DIGEST = bytes(32)


class Record:
    def __init__(self, seq=0, component=0, state=IDLE, boot_count=0, flags=0, progress=0,
                 size=0, version=0, digest=ZERO_DIGEST):
        self.seq = seq
        self.component = component
        self.state = state
        self.boot_count = boot_count
        self.flags = flags
        self.progress = progress
        self.size = size
        self.version = version
        self.digest = digest

    def copy(self, **changes):
        r = Record(self.seq, self.component, self.state, self.boot_count, self.flags,
                   self.progress, self.size, self.version, self.digest)
        for k in changes:
            setattr(r, k, changes[k])
        return r

    def encode(self):
        buf = bytearray(RECORD_SIZE)
        struct.pack_into(_FMT, buf, 0, MAGIC, self.seq, self.component, self.state,
                         self.boot_count, self.flags, self.progress, self.size, self.version,
                         self.digest, 0)
        struct.pack_into("<I", buf, CRC_OFFSET, crc32(memoryview(buf)[:CRC_OFFSET]))
        return buf

    @staticmethod
    def decode(buf):
        """The record in buf, or None when buf is not a valid record (empty or torn)."""
        mv = memoryview(buf)
        if struct.unpack_from("<I", buf, OFF_CRC)[0] != crc32(mv[:CRC_OFFSET]):
            return None
        f = struct.unpack_from(_FMT, buf, 0)
        if f[0] != MAGIC or f[2] > COMPONENT_NVM or not IDLE <= f[3] <= FAILED:
            return None
        return Record(f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], bytes(f[9]))

    def name(self):
        return STATE_NAMES.get(self.state, "?")


class Journal:
    """Two ping-pong sectors at the start of the `journal` region."""

    def __init__(self, region):
        self.region = region
        self.sector = region.sector
        self.slots = region.sector // RECORD_SIZE
        self._buf = bytearray(RECORD_SIZE)
        self.current = Record()
        self._active = 0  # sector index (0 or 1) holding the current record
        self._next = 0  # first free slot index in the active sector (slots = full)
        self.scan()

    def _read_slot(self, sector, slot):
        self.region.read(sector * self.sector + slot * RECORD_SIZE, self._buf)
        return self._buf

    def scan(self):
        best = None
        best_sector = 0
        last_used = [-1, -1]
        for s in (0, 1):
            for i in range(self.slots):
                buf = self._read_slot(s, i)
                empty = True
                for b in buf:
                    if b != 0xFF:
                        empty = False
                        break
                if empty:
                    continue
                last_used[s] = i
                rec = Record.decode(buf)
                if rec is not None and (best is None or rec.seq > best.seq):
                    best = rec
                    best_sector = s
        if best is None:
            self.current = Record()
            self._active = 1  # so the first append erases and uses sector 0
            self._next = self.slots
        else:
            self.current = best
            self._active = best_sector
            self._next = last_used[best_sector] + 1
        return self.current

    def append(self, rec):
        """Write rec as the new current record (seq = current + 1). Returns the stored record."""
        rec = rec.copy(seq=self.current.seq + 1)
        data = rec.encode()
        if self._next < self.slots:
            self.region.program(self._active * self.sector + self._next * RECORD_SIZE, data)
            self._next += 1
        else:
            other = 1 - self._active
            self.region.erase(other * self.sector)
            self.region.program(other * self.sector, data)
            self._active = other
            self._next = 1
        self.current = rec
        return rec

    def records(self):
        """Every valid record of both sectors, oldest first (diagnostics and tests)."""
        out = []
        for s in (0, 1):
            for i in range(self.slots):
                rec = Record.decode(self._read_slot(s, i))
                if rec is not None:
                    out.append(rec)
        out.sort(key=lambda r: r.seq)
        return out

    def require(self, *states):
        if self.current.state not in states:
            raise StateError("journal is %s" % self.current.name())
