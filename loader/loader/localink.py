# The local update over a debug probe (SWD): a control block in RAM holding two rings, an RTT-style
# channel. The host finds the block by its magic, writes a header, the signed envelope and the
# payload into the down ring, and reads the result line from the up ring. The bytes go through
# loader.api.stage exactly as on the network path: nothing unsigned is staged this way either.
#
# Control block (little-endian u32 fields, offsets from the block's start):
#   0  magic (16 bytes)
#   16 down ring offset, 20 size, 24 write count (host), 28 read count (device)
#   32 up ring offset,   36 size, 40 write count (device), 44 read count (host)
# Counts run modulo 2**32; a ring's size is a power of two. The device writes the magic last,
# so a host never sees a half-initialised block.
# Down frame: b"SUTU", envelope size (u32), payload size (u32), install (u8), envelope, payload.
# Up line: b"OK <seq>\n" or b"ERR <ErrorName> <message>\n".
import struct
import time

from micropython import const

MAGIC = b"SUTURE-LINK-CB\x00\x01"
FRAME_MAGIC = b"SUTU"
_HEADER = const(48)
_DOWN_SIZE = const(4096)
_UP_SIZE = const(256)
BLOCK_SIZE = const(48 + 4096 + 256)
_IDLE_MS = const(30000)


class LinkTimeoutError(Exception):
    """The host stopped sending before the frame was complete."""


class FrameError(Exception):
    """The down ring did not start with a valid frame."""


class FileRam:
    """The simulator's RAM: a file the host maps as the probe's memory."""

    def __init__(self, path, size=BLOCK_SIZE):
        with open(path, "wb") as f:
            f.write(bytes(size))
        self.f = open(path, "r+b")  # noqa: SIM115 - open for the board's lifetime

    def read(self, addr, buf):
        self.f.seek(addr)
        n = self.f.readinto(buf)
        return n

    def write(self, addr, data):
        self.f.seek(addr)
        self.f.write(data)
        self.f.flush()


class BufferRam:
    """Real RAM: a preallocated bytearray whose address the host finds by the magic."""

    def __init__(self, size=BLOCK_SIZE):
        self.buf = bytearray(size)

    def read(self, addr, buf):
        n = len(buf)
        buf[:] = self.buf[addr : addr + n]
        return n

    def write(self, addr, data):
        self.buf[addr : addr + len(data)] = data


class Channel:
    def __init__(self, ram, base=0):
        self.ram = ram
        self.base = base
        self.word = bytearray(4)
        down, up = _HEADER, _HEADER + _DOWN_SIZE
        ram.write(base + 16, struct.pack("<8I", down, _DOWN_SIZE, 0, 0, up, _UP_SIZE, 0, 0))
        ram.write(base, MAGIC)
        self.rd = 0
        self.wr = 0

    def _u32(self, off):
        self.ram.read(self.base + off, self.word)
        return struct.unpack("<I", self.word)[0]

    def readinto(self, buf):
        """Bytes from the down ring: at least one, at most len(buf) (waits for the host)."""
        mv = memoryview(buf)
        start = time.ticks_ms()
        while True:
            avail = (self._u32(24) - self.rd) & 0xFFFFFFFF
            if avail:
                break
            if time.ticks_diff(time.ticks_ms(), start) > _IDLE_MS:
                raise LinkTimeoutError("the host sent nothing for 30 s")
            time.sleep_ms(1)
        idx = self.rd % _DOWN_SIZE
        n = min(len(buf), avail, _DOWN_SIZE - idx)
        self.ram.read(self.base + _HEADER + idx, mv[:n])
        self.rd = (self.rd + n) & 0xFFFFFFFF
        self.ram.write(self.base + 28, struct.pack("<I", self.rd))
        return n

    def read_exact(self, n):
        out = bytearray(n)
        mv = memoryview(out)
        got = 0
        while got < n:
            got += self.readinto(mv[got:])
        return bytes(out)

    def send(self, data):
        """A line to the up ring (the host drains it; a full ring waits)."""
        for b in data[: _UP_SIZE - 1]:
            while ((self.wr - self._u32(44)) & 0xFFFFFFFF) >= _UP_SIZE:
                time.sleep_ms(1)
            self.ram.write(self.base + _HEADER + _DOWN_SIZE + self.wr % _UP_SIZE, bytes((b,)))
            self.wr = (self.wr + 1) & 0xFFFFFFFF
            self.ram.write(self.base + 40, struct.pack("<I", self.wr))


class _Payload:
    """The payload part of the frame as the loader's stream (readinto), never past its end."""

    def __init__(self, channel, size):
        self.ch = channel
        self.left = size

    def readinto(self, buf):
        if self.left <= 0:
            return 0
        mv = memoryview(buf)
        n = self.ch.readinto(mv[: min(len(buf), self.left)])
        self.left -= n
        return n


def serve(ram, base=0):
    """Publish the control block, take one update frame, stage it; the staged plan or None."""
    from loader import api

    ch = Channel(ram, base)
    try:
        head = ch.read_exact(13)
        if head[:4] != FRAME_MAGIC:
            raise FrameError("the frame does not start with SUTU")
        env_size, payload_size, install = struct.unpack("<IIB", head[4:])
        envelope = ch.read_exact(env_size)
        plan = api.stage(envelope, _Payload(ch, payload_size), bool(install))
    except Exception as exc:  # every failure is reported to the host by its class name
        ch.send((f"ERR {type(exc).__name__} {exc}\n").encode())
        return None
    ch.send((f"OK {plan.seq}\n").encode())
    return plan
