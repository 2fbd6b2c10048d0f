"""MicroPython source the host sends over the raw REPL (never imported by CPython code).

Each snippet runs on the board with the frozen (or, on the simulator, compiled) ``loader``
package importable. They print one result line ``SUTURE-JSON <json>`` that
:mod:`suture.devicectl.device_ops` parses; the host-data stream protocol is in :data:`HOST_STREAM`.
"""

from __future__ import annotations

# Line prefixes the board prints; the host looks for them in the REPL output.
READ_REQUEST = "\x1eSUTURE-READ "
RESULT = "SUTURE-JSON "

# A stream (readinto) whose bytes come from the host over the same serial link: for each
# read the board prints "\x1eSUTURE-READ <stream> <offset> <n>\n" and reads exactly n raw bytes
# from stdin. Ctrl-C is disabled meanwhile so payload bytes 0x03 are data, not an interrupt.
# ``pos`` may be moved back (the loader's provisioning reads its stream twice).
HOST_STREAM = """
import sys, micropython
class _HostStream:
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
        sys.stdout.write("\\x1eSUTURE-READ %d %d %d\\n" % (self.sid, self.pos, n))
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
            k = self.readinto(mv[done:done + 512])
            done += k
        return bytes(out)
"""

# The status protocol's device side, as the loader alone can answer it (no agent running):
# the journal's current record, the installed and backup versions, the NVM keys, the identity.
STATUS = """
import json
from loader import api
from loader import journal as _J
def _sut_status():
    ld = api.loader()
    r = ld.journal.current
    inst = ld.installed()
    bk = ld.backup_header()
    nvm = ld.nvm()
    keys = sorted(k.decode() for k in nvm.keys())
    return {
        "state": r.name(), "component": r.component, "seq": r.seq, "version": r.version,
        "boot_count": r.boot_count, "flags": r.flags, "progress": r.progress,
        "installed_version": inst.version,
        "installed_digest": "".join("%02x" % b for b in inst.digest),
        "backup_version": bk.version if bk else None,
        "nvm_keys": keys,
        "device_id": (nvm.get("id.device")[1].decode() if "id.device" in keys else None),
        "link": (nvm.get("net.link")[1].decode() if "net.link" in keys else None),
        "journal": [[x.seq, _J.STATE_NAMES[x.state], x.version] for x in ld.journal.records()],
    }
print("SUTURE-JSON " + json.dumps(_sut_status()))
"""

# Format littlefs on a blank board and install a first application bundle streamed from the host
# (stream 0), recorded as confirmed: the factory step.
PROVISION_APP = """
import json
from loader.hal import board as _board
if {blank}:
    _board().mount(format_if_blank=True)
from loader import api
micropython.kbd_intr(-1)
try:
    api.loader().provision(_HostStream(0, {size}), {size}, {version})
finally:
    micropython.kbd_intr(3)
print("SUTURE-JSON " + json.dumps({{"installed_version": api.loader().installed().version}}))
"""

# Verify and stage a signed update: the envelope is stream 0, the payload stream 1.
STAGE = """
import json
from loader import api
micropython.kbd_intr(-1)
try:
    _env = _HostStream(0, {envelope_size}).read_all()
    _plan = api.stage(_env, _HostStream(1, {payload_size}), {install})
finally:
    micropython.kbd_intr(3)
print("SUTURE-JSON " + json.dumps({{"staged_version": _plan.seq}}))
"""

# Identity records in the NVM store (schema 1), each value hex-encoded by the host.
PUT_NVM = """
import json, binascii
from loader import api
_nvm = api.nvm()
for _k, _v in {records!r}:
    _nvm.put(_k, binascii.unhexlify(_v), 1)
print("SUTURE-JSON " + json.dumps({{"written": len({records!r})}}))
"""

# Erase the device data: the NVM store, the journal, the staging and backup slots.
ERASE_DEVICE_DATA = """
import json
from loader.hal import board as _board
_b = _board()
_done = []
for _name in ("nvm", "staging", "backup", "journal"):
    _r = _b.region(_name)
    _r.erase_range(0, _r.size)
    _done.append([_name, _r.size])
print("SUTURE-JSON " + json.dumps({"erased": _done}))
"""

CONFIRM = """
import json
from loader import api
api.confirm()
print("SUTURE-JSON " + json.dumps({"state": api.status().name()}))
"""

REQUEST_REVERT = """
import json
from loader import api
api.request_revert()
print("SUTURE-JSON " + json.dumps({"state": api.status().name()}))
"""

RESET = """
import machine
machine.reset()
"""

# A reference responder of the status protocol (suture.devicectl.status_protocol): the loop an agent
# runs between its steps, polling stdin without blocking, answering each request line with the
# groups asked for, and printing its own log meanwhile. It serves `{count}` requests and ends.
# Needs STATUS's _sut_status() defined first.
STATUS_RESPONDER = """
import sys, select, json
_GROUPS = {{
    "state": ("state", "component", "seq", "boot_count", "flags", "progress"),
    "versions": ("installed_version", "installed_digest", "backup_version", "version"),
    "journal": ("journal",),
    "identity": ("device_id",),
}}
def _sut_answer(line):
    try:
        req = json.loads(line[16:])
        rid = req["id"]
    except (ValueError, KeyError, TypeError, IndexError):
        return {{"id": 0, "error": "malformed request"}}
    st = _sut_status()
    out = {{"id": rid}}
    for g in req.get("get", ()):
        for k in _GROUPS.get(g, ()):
            out[k] = st[k]
        if g == "agent":
            out["agent"] = {{"phase": "idle"}}
    return out
_poll = select.poll()
_poll.register(sys.stdin, select.POLLIN)
_line = bytearray()
_served = 0
_tick = 0
while _served < {count}:
    _tick += 1
    if _tick % 5 == 0:
        print("agent: tick", _tick)
    if not _poll.poll(20):
        continue
    _c = sys.stdin.buffer.read(1)
    if _c != b"\\n":
        if len(_line) < 4096:
            _line.extend(_c)
        continue
    if bytes(_line[:16]) == b"\\x1eSUTURE-STATUS? ":
        sys.stdout.write("\\x1eSUTURE-STATUS " + json.dumps(_sut_answer(bytes(_line))) + "\\n")
        _served += 1
    _line = bytearray()
"""
