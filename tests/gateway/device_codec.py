"""MicroPython scripts that run the device's link codec (device/agent/transport/link.py) on the
unix port, for the gateway tests: cases in, one RESULT line out."""

# args[0]: a JSONL file of ["enc", kind, rid, seq, payload_hex] or ["dec", wire_hex, step].
# "enc" gives the wire bytes the device sends; "dec" gives every frame the device's framer reads
# from those bytes, fed `step` bytes per read: ["F", kind, rid, seq, payload_hex] or ["D"].
CODEC = """
import sys, json, binascii
sys.path.insert(0, sys.argv[2])
from agent.transport.link import Framer, FRAME, DAMAGED, TIMEOUT

class Link:
    def __init__(self, data=b"", step=1):
        self.data = data
        self.pos = 0
        self.step = step
        self.sent = bytearray()
    def write(self, b):
        self.sent += bytes(b)
    def readinto(self, mv, timeout_ms):
        n = min(len(mv), self.step, len(self.data) - self.pos)
        mv[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n

out = []
for line in open(sys.argv[1]):
    case = json.loads(line)
    if case[0] == "enc":
        link = Link()
        f = Framer(link)
        f.send(case[1], case[2], case[3], binascii.unhexlify(case[4]))
        out.append(binascii.hexlify(link.sent).decode())
    else:
        f = Framer(Link(binascii.unhexlify(case[1]), case[2]), case[3])
        got = []
        while True:
            r = f.recv(0)
            if r == TIMEOUT:
                break
            if r == FRAME:
                got.append(["F", f.kind, f.rid, f.seq, binascii.hexlify(f.payload()).decode()])
            else:
                got.append(["D"])
        out.append(got)
print("RESULT " + json.dumps(out))
"""
