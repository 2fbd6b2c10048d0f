# A stream whose bytes come from the host over the board's serial link (docs/hil.md, "Host data
# over the REPL"). For each read the board prints "\x1eSUTURE-READ <stream> <offset> <n>" and
# reads exactly n raw bytes from stdin; the host (MicroPythonLink.exec_with_streams) answers.
# The caller disables Ctrl-C meanwhile (micropython.kbd_intr(-1)) so payload bytes 0x03 are data.
# `pos` may be moved back: the loader's provisioning reads its stream twice.
import sys


class HostStream:
    def __init__(self, sid, size):
        self.sid = sid
        self.size = size
        self.pos = 0
        self.inp = sys.stdin.buffer

    def readinto(self, buf):
        n = self.size - self.pos
        if n <= 0:
            return 0
        if n > len(buf):
            n = len(buf)
        sys.stdout.write("\x1eSUTURE-READ %d %d %d\n" % (self.sid, self.pos, n))
        mv = memoryview(buf)
        got = 0
        while got < n:
            k = self.inp.readinto(mv[got:n])
            if k:
                got += k
        self.pos += n
        return n

    def read_all(self):
        out = bytearray(self.size)
        mv = memoryview(out)
        done = 0
        while done < self.size:
            done += self.readinto(mv[done : done + 512])
        return bytes(out)
