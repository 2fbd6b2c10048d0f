# The status protocol's board side (docs/hil.md): while the agent waits between steps it reads
# its console; a line `\x1eSUTURE-STATUS? {"id": N, "get": [groups]}` is answered with one line
# `\x1eSUTURE-STATUS {"id": N, ...}`. Anything else typed is ignored. Input ends (EOF) -> the
# server turns itself off.
import json
import sys

from loader import api
from micropython import const

MAX_LINE = const(4096)
_REQ = b"\x1eSUTURE-STATUS? "


class StatusServer:
    def __init__(self, agent):
        import select

        self.agent = agent
        self.enabled = True
        self.line = bytearray()
        try:
            self.poller = select.poll()
            self.poller.register(sys.stdin, select.POLLIN)
            self.inp = sys.stdin.buffer
        except (AttributeError, OSError):
            self.enabled = False

    def serve(self, timeout_ms):
        """Wait up to timeout_ms for console input, answering any complete request."""
        if not self.enabled:
            return
        if not self.poller.poll(timeout_ms):
            return
        while self.poller.poll(0):
            c = self.inp.read(1)
            if not c:
                self.enabled = False  # no console (EOF)
                return
            if c != b"\n":
                if len(self.line) < MAX_LINE:
                    self.line.extend(c)
                continue
            line = bytes(self.line)
            self.line = bytearray()
            if line.startswith(_REQ):
                sys.stdout.write("\x1eSUTURE-STATUS " + json.dumps(self.answer(line)) + "\n")

    def answer(self, line):
        try:
            req = json.loads(line[len(_REQ) :])
            rid = req["id"]
            groups = req.get("get", ())
        except (ValueError, KeyError, TypeError):
            return {"id": 0, "error": "malformed request"}
        if not isinstance(rid, int):
            return {"id": 0, "error": "malformed request"}
        out = {"id": rid}
        a = self.agent
        r = api.current()
        for g in groups:
            if g == "state":
                out.update(state=r.name(), component=r.component, seq=r.seq,
                           boot_count=r.boot_count, flags=r.flags, progress=r.progress)
            elif g == "versions":
                inst = api.installed()
                out.update(installed_version=inst.version,
                           installed_digest="".join("%02x" % b for b in inst.digest),
                           backup_version=api.backup_version(), version=r.version)
            elif g == "journal":
                out["journal"] = [[x.seq, x.name(), x.version] for x in api.records()]
            elif g == "identity":
                out["device_id"] = a.device_id
            elif g == "agent":
                out["agent"] = {"phase": a.phase, "schedule_number": a.poller.last_number,
                                "queued_reports": len(a.store.queued())}
        return out
