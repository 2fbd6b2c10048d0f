# NOR flash backed by a file, for the simulated board.
#
# Semantics of a NOR chip: erase sets a whole sector to 0xFF; program can only clear bits
# (1 -> 0) and stays inside one page; programming a byte whose erased bits it would need to set
# is an error (FlashProgramError), as a real chip would silently store the AND of both.
# Every erase and program counts as one operation. Each sector's erase count is kept in
# `<image>.erases` (little-endian uint32 per sector), beside the image file.
#
# Power cuts: the harness sets SUTURE_CUT_AFTER=N (and optionally SUTURE_CUT_TORN=k). Operations
# 1..N complete; operation N+1 is the cut: with k set, k of its bytes are applied (a torn
# program or a partial erase), then PowerCut is raised. From then on every operation raises
# PowerCut again without touching the file, so no cleanup code can write after the cut.
#   SUTURE_CUT_FROM=tail   the applied bytes are the operation's last k (default: its first k):
#                          an erase cut that leaves the sector's head un-erased, not its tail
#   SUTURE_CUT_WEAK=w      the w bytes next to the applied part (after it for head, before it
#                          for tail) are left weak: every bit the operation was changing there
#                          reads back as either value, chosen afresh at each read
#   SUTURE_SEED=s          seeds those reads (xorshift32): the same seed gives the same reads
# Weak bytes persist in `<image>.weak` (records: address u32 LE, count u16 LE, a mask byte per
# byte) until an erase of their sector, or a program that clears those bits, settles them.
import os

from loader.errors import FlashError, FlashProgramError, PowerCut


class _Supply:
    """The power supply shared by every chip of the simulated board."""

    def __init__(self):
        cut = os.getenv("SUTURE_CUT_AFTER")
        torn = os.getenv("SUTURE_CUT_TORN")
        self.cut_after = int(cut) if cut else -1
        self.torn = int(torn) if torn else -1
        self.tail = os.getenv("SUTURE_CUT_FROM") == "tail"
        weak = os.getenv("SUTURE_CUT_WEAK")
        self.weak = int(weak) if weak else 0
        seed = os.getenv("SUTURE_SEED")
        self.rand = (int(seed) if seed else 1) & 0xFFFFFFFF or 0x9E3779B9
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

    def random_byte(self):
        x = self.rand
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.rand = x
        return x & 0xFF

    def cut_span(self, n, applied):
        """For an operation of n bytes cut with `applied` bytes done: (start, end) of the applied
        part and (start, end) of the weak part, offsets into the operation."""
        applied = min(applied, n)
        w = min(self.weak, n - applied)
        if self.tail:
            return (n - applied, n), (n - applied - w, n - applied)
        return (0, applied), (applied, applied + w)


supply = _Supply()


class SimNorFlash:
    def __init__(self, path, size, sector, page):
        self.path = path
        self.size = size
        self.sector = sector
        self.page = page
        self._f = open(path, "r+b")  # noqa: SIM115  (the chip's image, open as long as it)
        self._cnt = open(path + ".erases", "r+b")  # noqa: SIM115
        self._ff = bytes(b"\xff" * page)
        self._old = bytearray(page)
        self._word = bytearray(4)
        self._weak = {}  # address -> mask of the bits there that read back as either value
        try:
            with open(path + ".weak", "rb") as f:
                raw = f.read()
        except OSError:
            raw = b""
        i = 0
        while i + 6 <= len(raw):
            a = int.from_bytes(raw[i : i + 4], "little")
            n = int.from_bytes(raw[i + 4 : i + 6], "little")
            for k in range(n):
                if raw[i + 6 + k]:
                    self._weak[a + k] = raw[i + 6 + k]
            i += 6 + n

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("flash access outside the chip")

    def _save_weak(self):
        out = bytearray()
        for a in sorted(self._weak):
            out += a.to_bytes(4, "little") + b"\x01\x00" + bytes((self._weak[a],))
        with open(self.path + ".weak", "wb") as f:
            f.write(out)

    def _weak_in(self, addr, n):
        """The weak addresses in [addr, addr+n)."""
        if not self._weak:
            return ()
        return [a for a in self._weak if addr <= a < addr + n]

    def read(self, addr, buf):
        self._check(addr, len(buf))
        if supply.dead:
            raise PowerCut()
        self._f.seek(addr)
        self._f.readinto(buf)
        for a in self._weak_in(addr, len(buf)):
            m = self._weak[a]
            buf[a - addr] = (buf[a - addr] & ~m & 0xFF) | (supply.random_byte() & m)

    def _fill_ff(self, addr, n):
        self._f.seek(addr)
        left = n
        while left > 0:
            k = self.page if left > self.page else left
            self._f.write(self._ff[:k] if k < self.page else self._ff)
            left -= k

    def erase(self, addr):
        if addr % self.sector:
            raise FlashError("erase address not sector-aligned")
        self._check(addr, self.sector)
        partial = supply.next_op()
        if partial >= 0:
            (a0, a1), (w0, w1) = supply.cut_span(self.sector, partial)
            if w1 > w0:  # the bits still at 0 there are only half erased
                old = bytearray(w1 - w0)
                self._f.seek(addr + w0)
                self._f.readinto(old)
                for k in range(w1 - w0):
                    m = (~old[k] & 0xFF) | self._weak.get(addr + w0 + k, 0)
                    if m:
                        self._weak[addr + w0 + k] = m
                self._fill_ff(addr + w0, w1 - w0)
            for a in self._weak_in(addr + a0, a1 - a0):
                del self._weak[a]
            self._fill_ff(addr + a0, a1 - a0)
            self._save_weak()
            raise PowerCut()
        self._fill_ff(addr, self.sector)
        if self._weak_in(addr, self.sector):
            for a in self._weak_in(addr, self.sector):
                del self._weak[a]
            self._save_weak()
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
        weak = self._weak_in(addr, n)
        for a in weak:  # a weak bit may still be programmed to 0
            old[a - addr] |= self._weak[a]
        o = int.from_bytes(old, "little")
        d = int.from_bytes(data, "little")
        if o & d != d:
            raise FlashProgramError("program over non-erased bits at 0x%x" % addr)
        partial = supply.next_op()
        if partial >= 0:
            (a0, a1), (w0, w1) = supply.cut_span(n, partial)
            for k in range(w0, w1):  # the bits it was clearing there are half programmed
                m = (old[k] & ~data[k] & 0xFF) | self._weak.get(addr + k, 0)
                if m:
                    self._weak[addr + k] = m
            for k in range(a0, a1):
                self._settle(addr + k, data[k])
            self._f.seek(addr + min(a0, w0))
            self._f.write(data[min(a0, w0) : max(a1, w1)])
            self._save_weak()
            raise PowerCut()
        self._f.seek(addr)
        self._f.write(data)
        if weak:
            for a in weak:
                self._settle(a, data[a - addr])
            self._save_weak()

    def _settle(self, a, value):
        """Programming value at a weak address: the bits it clears are solid 0 now."""
        m = self._weak.get(a)
        if m is not None:
            m &= value
            if m:
                self._weak[a] = m
            else:
                del self._weak[a]
