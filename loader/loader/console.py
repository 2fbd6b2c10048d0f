# What a local link (a serial REPL, a test harness) asks of the loader on a running board:
# provision a first application, stage a signed release from files in littlefs, and report the
# state as one JSON line. The same signed artefacts and checks as the network path.
import json

from loader import journal as J


class FileStream:
    """A file read with readinto(), tracking its position (the loader rewinds with .pos).
    Closed by `with` (or close()): a file left to the collector is closed whenever a
    collection runs, which on littlefs may be inside another file operation."""

    def __init__(self, path):
        self.f = open(path, "rb")  # noqa: SIM115  (read as long as the stream is)
        self.pos = 0

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def readinto(self, buf):
        self.f.seek(self.pos)
        n = self.f.readinto(buf) or 0
        self.pos += n
        return n

    def size(self):
        self.f.seek(0, 2)
        return self.f.tell()


def provision(path, version):
    """Factory step: format littlefs and install the bundle at path as the confirmed version.
    The bundle must be in RAM-backed storage that survives the format: pass its bytes."""
    from loader.api import loader

    ld = loader()
    with FileStream(path) as s:
        ld.provision(s, s.size(), version)


def stage(envelope_path, payload_path, install=True):
    """Verify the envelope and stage the payload (both files in littlefs)."""
    from loader.api import loader

    with open(envelope_path, "rb") as f:
        env = f.read()
    with FileStream(payload_path) as s:
        plan = loader().stage(env, s, install)
    return plan.seq


def report():
    """Print the journal's current record and what is installed, as `SUTURE-REPORT <json>`."""
    from loader.api import loader

    ld = loader()
    r = ld.journal.current
    inst = ld.installed()
    out = {
        "component": J.COMPONENT_NAMES.get(r.component, "?"),
        "state": r.name(),
        "seq": r.seq,
        "version": r.version,
        "boot_count": r.boot_count,
        "flags": r.flags,
        "progress": r.progress,
        "installed_version": inst.version,
        "loader_seq": ld.loader_seq(),
    }
    print("SUTURE-REPORT " + json.dumps(out))
    return out
