# Flash access through regions: the loader never addresses a chip directly, only a named region
# of one (journal, staging, backup, nvm on the external flash). A driver provides
#   read(addr, buf)          fill buf from addr
#   erase(addr)              erase the sector starting at addr (to 0xFF)
#   program(addr, data)      program data, inside one page; NOR semantics (only clears bits)
# and the attributes size, sector, page.
from micropython import const

from loader.errors import FlashError

_CHUNK = const(256)


class Region:
    def __init__(self, dev, offset, size, name=""):
        if offset % dev.sector or size % dev.sector or offset + size > dev.size:
            raise FlashError("region %s not sector-aligned or outside the chip" % name)
        self.dev = dev
        self.offset = offset
        self.size = size
        self.name = name
        self.sector = dev.sector
        self.page = dev.page

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("access outside region %s" % self.name)

    def read(self, addr, buf):
        self._check(addr, len(buf))
        self.dev.read(self.offset + addr, buf)

    def erase(self, addr):
        if addr % self.sector:
            raise FlashError("erase not sector-aligned")
        self._check(addr, self.sector)
        self.dev.erase(self.offset + addr)

    def erase_range(self, addr, n):
        """Erase the sectors covering [addr, addr+n)."""
        end = addr + n
        a = addr - addr % self.sector
        while a < end:
            self.erase(a)
            a += self.sector

    def program(self, addr, data):
        """Program data at addr, split at page boundaries (one driver operation per page)."""
        n = len(data)
        self._check(addr, n)
        mv = memoryview(data)
        done = 0
        page = self.page
        while done < n:
            a = self.offset + addr + done
            step = page - (a % page)
            if step > n - done:
                step = n - done
            self.dev.program(a, mv[done : done + step])
            done += step

    def is_erased(self, addr, n, buf):
        """True when [addr, addr+n) reads all 0xFF (buf: scratch buffer)."""
        mv = memoryview(buf)
        while n > 0:
            k = len(buf) if n > len(buf) else n
            self.read(addr, mv[:k])
            for i in range(k):
                if mv[i] != 0xFF:
                    return False
            addr += k
            n -= k
        return True


class RegionReader:
    """A stream (readinto) over the first `size` bytes of a region, from `start`."""

    def __init__(self, region, size, start=0):
        self.region = region
        self.pos = start
        self.end = start + size

    def readinto(self, buf):
        n = len(buf)
        if n > self.end - self.pos:
            n = self.end - self.pos
        if n <= 0:
            return 0
        mv = memoryview(buf)
        self.region.read(self.pos, mv[:n])
        self.pos += n
        return n


class RegionWriter:
    """Sequential writer into a region from `start`: erases each sector when first entered."""

    def __init__(self, region, start=0):
        self.region = region
        self.pos = start
        self.erased_to = start - start % region.sector

    def write(self, data):
        n = len(data)
        end = self.pos + n
        if end > self.region.size:
            raise FlashError("write past the end of region %s" % self.region.name)
        while self.erased_to < end:
            self.region.erase(self.erased_to)
            self.erased_to += self.region.sector
        self.region.program(self.pos, data)
        self.pos = end
        return n


class PageWriter:
    """Sequential writer that programs whole pages (one flash operation each) from a
    preallocated page buffer, erasing each sector when first entered. Call flush() at the end."""

    def __init__(self, region, start=0):
        if start % region.page:
            raise FlashError("PageWriter start not page-aligned")
        self.region = region
        self.pos = start
        self.erased_to = start - start % region.sector
        self.buf = bytearray(region.page)
        self.fill = 0
        self.count = 0

    def _emit(self, data):
        end = self.pos + len(data)
        if end > self.region.size:
            raise FlashError("write past the end of region %s" % self.region.name)
        while self.erased_to < end:
            self.region.erase(self.erased_to)
            self.erased_to += self.region.sector
        self.region.program(self.pos, data)
        self.pos = end

    def write(self, data):
        mv = memoryview(data)
        n = len(mv)
        i = 0
        page = len(self.buf)
        while i < n:
            k = page - self.fill
            if k > n - i:
                k = n - i
            self.buf[self.fill : self.fill + k] = mv[i : i + k]
            self.fill += k
            i += k
            if self.fill == page:
                self._emit(self.buf)
                self.fill = 0
        self.count += n
        return n

    def flush(self):
        if self.fill:
            self._emit(memoryview(self.buf)[: self.fill])
            self.fill = 0
