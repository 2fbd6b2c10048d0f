"""A stand-in for MicroPython's ``machine`` module with a JEDEC SPI NOR chip behind its SPI bus,
for running the real-board HAL (loader/hal/mcu.py) under the unix port: write ``MACHINE_PY`` as
``machine.py`` beside the script. The chip is a sparse 16 MiB array (4 KiB sectors allocated
when first written) that obeys READ 03h, WREN 06h, RDSR 05h, PP 02h and SE 20h, refuses a write
without WREN, and logs every command; ``BUS.spi`` records how the bus was opened."""

MACHINE_PY = '''class Pin:
    OUT = 1
    def __init__(self, n, mode=None, value=1):
        self.n = n
        self.v = value
        BUS.cs = self
    def __call__(self, v):
        if v and not self.v:
            BUS.end()
        self.v = v

class _Mem:
    """A sparse 16 MiB NOR array: 4 KiB sectors allocated when first written."""
    def __init__(self):
        self.sectors = {}
    def read(self, a, n):
        out = bytearray(n)
        for i in range(n):
            sec = self.sectors.get((a + i) >> 12)
            out[i] = 0xFF if sec is None else sec[(a + i) & 4095]
        return out
    def sector(self, a):
        s = self.sectors.get(a >> 12)
        if s is None:
            s = self.sectors[a >> 12] = bytearray(b"\\xff" * 4096)
        return s

class _Bus:
    def __init__(self):
        self.mem = _Mem()
        self.spi = None
        self.cmd = bytearray()
        self.wel = False
        self.log = []
        self.cs = None
    def end(self):
        c = self.cmd
        if c:
            op = c[0]
            self.log.append(op)
            if op == 0x06:
                self.wel = True
            elif op in (0x02, 0x20):
                if not self.wel:
                    raise OSError("write without WREN")
                a = (c[1] << 16) | (c[2] << 8) | c[3]
                if op == 0x20:
                    self.mem.sector(a)[:] = b"\\xff" * 4096
                else:
                    for i, b in enumerate(c[4:]):
                        self.mem.sector(a + i)[(a + i) & 4095] &= b
                self.wel = False
        self.cmd = bytearray()

BUS = _Bus()

class SPI:
    def __init__(self, n, baudrate=0, sck=None, mosi=None, miso=None):
        BUS.spi = [n, baudrate] + [p.n for p in (sck, mosi, miso) if p is not None]
    def write(self, data):
        BUS.cmd.extend(data)
    def readinto(self, buf):
        c = BUS.cmd
        if c[0] == 0x05:
            buf[0] = 0
        elif c[0] == 0x03:
            a = (c[1] << 16) | (c[2] << 8) | c[3]
            buf[:] = BUS.mem.read(a, len(buf))

class WDT:
    def __init__(self, timeout=0):
        self.fed = 0
    def feed(self):
        self.fed += 1

def reset():
    raise SystemExit(98)
'''
