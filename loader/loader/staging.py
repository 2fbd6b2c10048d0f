# Resumable staging: the update agent streams a payload into the staging slot in pieces, over
# several connections and across resets. The journal's DOWNLOADING record carries the resume
# point in `progress` (bytes written and hashed so far, always a multiple of the flash sector:
# the sector after it may hold a torn program and is erased again before it is reused). After a
# reset, begin() with the same verified envelope re-hashes [0, progress) from the flash and
# the download continues there. Same checks as Loader.stage: nothing is written before the
# envelope verifies, the payload is hashed while it is written, and STAGED is recorded only
# when size and SHA-256 match the signed manifest.
import hashlib

from micropython import const

from loader import journal as J
from loader.errors import DigestError, SizeError, StateError
from loader.flash import PageWriter, RegionReader

CHECKPOINT = const(32768)  # journal the resume point about every this many bytes
ABORTED = const(43)  # FAILED code: the scheduler asked to discard the staged update


class Stager:
    """One payload being staged. begin() -> write(data)... -> finish(install)."""

    def __init__(self, ld):
        self.ld = ld
        self.rec = None
        self.offset = 0
        self.size = 0
        self.digest = None
        self.version = 0
        self.h = None
        self.w = None
        self._since = 0
        self._cp = CHECKPOINT

    def begin(self, envelope, resume=True):
        """Verify the envelope for this device; open (or resume) the DOWNLOADING record.
        Returns the offset the payload must continue from."""
        ld = self.ld
        j = ld.journal
        cur, plan, size, digest, comp = ld.check_staging(envelope)
        seq = plan.seq
        self.size = size
        self.digest = digest
        self.version = seq
        sector = ld.staging.sector
        self._cp = CHECKPOINT - CHECKPOINT % sector or sector
        self.h = hashlib.sha256()
        same = (cur.component == comp and cur.state == J.DOWNLOADING
                and cur.version == seq and cur.size == size and cur.digest == digest)
        if resume and same and cur.progress % sector == 0 and cur.progress <= size:
            self.rec = cur
            self.offset = cur.progress
            reader = RegionReader(ld.staging, self.offset)
            mv = memoryview(ld.buf)
            while True:
                n = reader.readinto(ld.buf)
                if not n:
                    break
                self.h.update(mv[:n])
        else:
            rec = ld.downloading_record(cur, seq, size, digest, comp)
            self.rec = j.append(rec)
            self.offset = 0
        self.w = PageWriter(ld.staging, self.offset)
        self._since = 0
        return self.offset

    def write(self, data):
        """Hash and program the next bytes of the payload (any length)."""
        mv = memoryview(data)
        n = len(mv)
        if self.offset + n > self.size:
            raise SizeError("payload longer than the manifest's image size")
        i = 0
        while i < n:
            k = self._cp - self._since
            if k > n - i:
                k = n - i
            part = mv[i : i + k]
            self.h.update(part)
            self.w.write(part)
            i += k
            self.offset += k
            self._since += k
            if self._since >= self._cp:
                self._since = 0
                # The writer is on a sector boundary, so nothing is left in its page buffer.
                self.rec = self.ld.journal.append(self.rec.copy(progress=self.offset))
        return n

    def finish(self, install=False):
        """Check size and digest; record STAGED (INSTALL_REQUESTED with install)."""
        self.w.flush()
        ld = self.ld
        if self.offset != self.size:
            err = SizeError("payload is shorter than the manifest's image size")
            ld._fail(self.rec, err)
            raise err
        if self.h.digest() != self.digest:
            err = DigestError("payload does not match the manifest's image digest")
            ld._fail(self.rec, err)
            raise err
        ld.check_staged_image(self.rec)
        flags = self.rec.flags | (J.FLAG_INSTALL_REQUESTED if install else 0)
        self.rec = ld.journal.append(self.rec.copy(state=J.STAGED, progress=self.size,
                                                   flags=flags))
        return self.rec


def abandon(ld, code=ABORTED):
    """Discard a download in progress or a staged update that was not yet asked to install
    (the scheduler aborted it): the journal records FAILED; the slot is simply reused later."""
    r = ld.journal.current
    if not (
        r.state == J.DOWNLOADING
        or (r.state == J.STAGED and not r.flags & J.FLAG_INSTALL_REQUESTED)
    ):
        raise StateError("nothing to discard (%s)" % r.name())
    rec = ld.journal.append(r.copy(state=J.FAILED, progress=code))
    if r.flags & J.FLAG_KEEP_BACKUP:
        ld._resume_trial(rec)
    return ld.journal.current
