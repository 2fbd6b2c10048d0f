# NOR flash backed by a file, for the simulated board.
#
# Semantics of a NOR chip: erase sets a whole sector to 0xFF; program can only clear bits
# (1 -> 0) and stays inside one page; programming a byte whose erased bits it would need to set
# is an error (FlashProgramError), as a real chip would silently store the AND of both.
# Every erase and program counts as one operation. Each sector's erase count is kept in
# `<image>.erases` (little-endian uint32 per sector), beside the image file.
#
# Power cuts: the harness sets SUTURE_CUT_AFTER=N (and optionally SUTURE_CUT_TORN=k). Operations
# 1..N complete; operation N+1 is the cut: with k set, its first k bytes are applied (a torn
# program or a partial erase), then PowerCut is raised. From then on every operation raises
# PowerCut again without touching the file, so no cleanup code can write after the cut.
import os

from loader.errors import FlashError, FlashProgramError, PowerCut


class _Supply:
    """The power supply shared by every chip of the simulated board."""

    def __init__(self):
        cut = os.getenv("SUTURE_CUT_AFTER")
        torn = os.getenv("SUTURE_CUT_TORN")
        self.cut_after = int(cut) if cut else -1
        self.torn = int(torn) if torn else -1
        self.ops = 0
        self.dead = False
        # SUTURE_HEAP_SAMPLE=1: record the live heap (after a collection) at every operation.
        self.sample = bool(os.getenv("SUTURE_HEAP_SAMPLE"))
        self.heap_peak = 0

    def next_op(self):
        """Count one operation; return -1 to run it fully, or the number of bytes to apply
        before the cut (0 for a clean cut)."""
        if self.dead:
            raise PowerCut()
        if self.sample:
            import gc

            gc.collect()
            m = gc.mem_alloc()
            if m > self.heap_peak:
                self.heap_peak = m
        if self.cut_after >= 0 and self.ops >= self.cut_after:
            self.dead = True
            return self.torn if self.torn > 0 else 0
        self.ops += 1
        return -1


supply = _Supply()


class SimNorFlash:
    def __init__(self, path, size, sector, page):
        self.path = path
        self.size = size
        self.sector = sector
        self.page = page
        self._f = open(path, "r+b")
        self._cnt = open(path + ".erases", "r+b")
        self._ff = bytes(b"\xff" * page)
        self._old = bytearray(page)
        self._word = bytearray(4)

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("flash access outside the chip")

    def read(self, addr, buf):
        self._check(addr, len(buf))
        if supply.dead:
            raise PowerCut()
        self._f.seek(addr)
        self._f.readinto(buf)

    def erase(self, addr):
        if addr % self.sector:
            raise FlashError("erase address not sector-aligned")
        self._check(addr, self.sector)
        partial = supply.next_op()
        n = self.sector if partial < 0 else min(partial, self.sector)
        self._f.seek(addr)
        left = n
        while left > 0:
            k = self.page if left > self.page else left
            self._f.write(self._ff[:k] if k < self.page else self._ff)
            left -= k
        if partial >= 0:
            raise PowerCut()
        idx = (addr // self.sector) * 4
        self._cnt.seek(idx)
        self._cnt.readinto(self._word)
        v = int.from_bytes(self._word, "little") + 1
        self._cnt.seek(idx)
        self._cnt.write(v.to_bytes(4, "little"))

    def program(self, addr, data):
        n = len(data)
        self._check(addr, n)
        if n > self.page or (addr % self.page) + n > self.page:
            raise FlashError("program crosses a page boundary")
        old = memoryview(self._old)[:n]
        self._f.seek(addr)
        self._f.readinto(old)
        o = int.from_bytes(old, "little")
        d = int.from_bytes(data, "little")
        if o & d != d:
            raise FlashProgramError("program over non-erased bits at 0x%x" % addr)
        partial = supply.next_op()
        if partial >= 0:
            if partial > 0:
                self._f.seek(addr)
                self._f.write(data[: min(partial, n)])
            raise PowerCut()
        self._f.seek(addr)
        self._f.write(data)
