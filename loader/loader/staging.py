# Staging: the one way a payload gets into the staging slot, whoever brings it (the agent over
# the network, a local link, the simulator's `stage`). Nothing is written before the envelope
# verifies (signature, identity, anti-rollback, size: check()); the payload is hashed while it
# is written; STAGED is recorded only when size and SHA-256 match the signed manifest (and, for
# a loader release, when the payload is a loader image for this board's slot). A failure after
# the DOWNLOADING record was opened records FAILED with the error's code (Loader.fail).
#
# Staging in pieces (Stager): the DOWNLOADING record carries the resume point in `progress`
# (bytes written and hashed so far, always a multiple of the flash sector: the sector after it
# may hold a torn program and is erased again before it is reused). After a reset, begin() with
# the same verified envelope re-hashes [0, progress) from the flash and the download continues
# there. stage() is the same path in one go, from a stream.
import hashlib

from micropython import const

from loader import journal as J
from loader.errors import (
    ABORTED,
    DigestError,
    LoaderImageError,
    MemoryShortError,
    RollbackError,
    SizeError,
    StateError,
    SuitError,
    SuitUnsupported,
)
from loader.flash import PageWriter, RegionReader
from loader.journal import Record

P_SOURCE_COMPONENT = const(22)
CHECKPOINT = const(32768)  # journal the resume point about every this many bytes
# The SUIT component identifiers this device installs, and the journal's component for each.
COMPONENTS = {b"app": J.COMPONENT_APP, b"loader": J.COMPONENT_LOADER}


def encrypted_source(plan):
    """The component that receives the ciphertext of an encrypted release, or None for a
    plain one. suture's host builds an encrypted release as the draft's "fetch + copy"
    (docs/formats/suit-encryption.md): the image's component, with the SUIT_Encryption_Info
    and source-component set, and a second one, its identifier followed by 'encrypted', with
    the ciphertext's digest and size."""
    comps = plan.components
    if len(comps) != 2 or comps[0].encryption_info() is None:
        return None
    src = comps[1]
    if comps[0].params.get(P_SOURCE_COMPONENT) != 1 or len(src.id) != len(comps[0].id) + 1 \
            or src.id[:-1] != comps[0].id or src.id[-1] != b"encrypted":
        raise SuitError("an encrypted component whose ciphertext component is not its own")
    return src


def component_of(plan):
    """The journal component a verified plan installs: its one component's identifier (the
    image's, not the ciphertext's, for an encrypted release)."""
    ident = plan.components[0].id
    n = 2 if encrypted_source(plan) is not None else 1
    if len(plan.components) != n or len(ident) != 1 or ident[0] not in COMPONENTS:
        raise LoaderImageError("the release is for a component this device does not have")
    return COMPONENTS[ident[0]]


def check(ld, envelope, component=None, now=None):
    """The checks every staging starts with: no other update in flight, no revert pending, and
    the envelope verified for this device (signature, identity, anti-rollback, size). The
    manifest's component decides what is installed (an application bundle or a loader image);
    with component given, a release for the other one is refused. The hospital's manifest
    over the vendor's is checked first (loader/suit_hospital.py: its signature, and its
    conditions at now, the device's unix time or None) and the vendor's envelope it carries
    is what is verified and staged. Returns (current record,
    the SUIT plan, image size, image digest, journal component)."""
    cur = ld.journal.current
    # A loader release's DOWNLOADING record is a staging that a power cut (or a crash)
    # interrupted: stage0 never acts on it, and a new staging replaces it, as it does an
    # application's (else it would block every later update).
    loader_dl = cur.component == J.COMPONENT_LOADER and cur.state == J.DOWNLOADING
    if cur.state not in J.CLOSED and not loader_dl and not (
        cur.component == J.COMPONENT_APP
        and (cur.state == J.TRIAL or cur.state == J.DOWNLOADING
             or (cur.state == J.STAGED and not cur.flags & J.FLAG_INSTALL_REQUESTED))
    ):
        raise StateError("an update is in flight (%s)" % cur.name())
    if cur.state == J.TRIAL and cur.flags & J.FLAG_REVERT_REQUESTED:
        raise StateError("a revert is pending")
    from loader import suit, suit_hospital, trust  # only staging needs SUIT and ES256

    envelope = suit_hospital.vendor_envelope(ld, envelope, now)
    b = ld.board
    plan = suit.process(envelope, trust.keys(ld, "vendor"),
                        (b.vendor_id, b.class_id, b.device_id),
                        min_seq=0, max_image=ld.staging.size,
                        source_match=lambda c, digest, size: _is_source(ld, c, digest, size))
    comp_j = component_of(plan)
    if component is not None and comp_j != component:
        raise LoaderImageError("the release is for the %s, not the %s"
                               % (J.COMPONENT_NAMES[comp_j], J.COMPONENT_NAMES[component]))
    floor = ld.installed().version if comp_j == J.COMPONENT_APP else ld.loader_seq()
    if plan.seq <= floor:
        raise RollbackError("sequence number %d is not above %d" % (plan.seq, floor))
    if comp_j == J.COMPONENT_LOADER and cur.state not in J.CLOSED and not loader_dl:
        raise StateError("the application's update must finish first (%s)" % cur.name())
    comp = plan.components[0]
    digest = comp.digest()
    size = comp.size()
    if digest is None or not isinstance(size, int):
        raise SuitError("manifest gives no image digest and size")
    return cur, plan, size, digest, comp_j


def _is_source(ld, comp, digest, size):
    """A delta's source condition: for the application, the installed one or the confirmed
    one in the backup slot is that image; for the loader, the image in the loader slot (a
    board whose HAL has no readable "loader" region has no source for a loader delta)."""
    if len(comp.id) != 1:
        return False
    if comp.id[0] == b"loader":
        slot = loader_slot(ld)
        if slot is None:
            return False
        from loader import loader_image

        return loader_image.installed_is(slot, size, digest, ld.buf)
    if comp.id[0] != b"app":
        return False
    inst = ld.installed()
    if inst.digest == digest and inst.size == size:
        return True
    hdr = ld.backup_header()
    return hdr is not None and hdr.digest == digest and hdr.size == size


def loader_slot(ld):
    """The installed loader image's region (the board's "loader" region, read only here), or
    None on a board that does not expose it."""
    try:
        return ld.board.region("loader")
    except KeyError:
        return None


def begin(ld, envelope, checkpoint=True, resume=True, now=None):
    """Verify envelope for this device and open (or resume) its staging in pieces: a Stager for
    a full payload, a loader.delta.DeltaStager for a delta patch (docs/formats/delta.md). A heap
    that runs out meanwhile is a MemoryShortError."""
    st = Stager(ld, checkpoint)
    try:
        checked = check(ld, envelope, now=now)
    except MemoryError:
        st.out_of_memory()
    st = _stager_for(ld, checked, st, checkpoint)
    st.open(checked, resume)
    return st


def _stager_for(ld, checked, plain, checkpoint):
    """The stager of a verified release: a delta's, an encrypted payload's, or plain."""
    plan = checked[1]
    if plan.components[0].delta() is not None:
        from loader.delta import DeltaStager

        return DeltaStager(ld, checkpoint)
    if encrypted_source(plan) is not None:
        from loader.encrypted import EncryptedStager

        return EncryptedStager(ld, checkpoint)
    return plain


def resume_or_open(ld, cur, seq, size, digest, component, resume, h):
    """Where a staging of the payload (size, digest) starts: cur itself when it is that
    payload's DOWNLOADING record and resume is asked (its staged bytes, whole sectors, are
    hashed into h again), else a new DOWNLOADING record at 0. Returns (record, offset)."""
    same = (cur.component == component and cur.state == J.DOWNLOADING
            and cur.version == seq and cur.size == size and cur.digest == digest)
    if resume and same and cur.progress % ld.staging.sector == 0 and cur.progress <= size:
        reader = RegionReader(ld.staging, cur.progress)
        mv = memoryview(ld.buf)
        while True:
            n = reader.readinto(ld.buf)
            if not n:
                break
            h.update(mv[:n])
        return cur, cur.progress
    return ld.journal.append(downloading_record(cur, seq, size, digest, component)), 0


def downloading_record(cur, seq, size, digest, component=J.COMPONENT_APP):
    """The DOWNLOADING record that opens staging on top of the current record cur. When the
    running application is an unconfirmed trial (or cur's update already kept the backup), the
    backup slot holds the last confirmed application: KEEP_BACKUP, and the trial's boot count
    carries on."""
    if component != J.COMPONENT_APP:
        return Record(component=component, state=J.DOWNLOADING, size=size, version=seq,
                      digest=digest)
    keep = cur.component == J.COMPONENT_APP and (
        cur.state == J.TRIAL or (cur.state not in J.CLOSED and cur.flags & J.FLAG_KEEP_BACKUP)
    )
    return Record(component=J.COMPONENT_APP, state=J.DOWNLOADING,
                  flags=J.FLAG_KEEP_BACKUP if keep else 0,
                  boot_count=cur.boot_count if keep else 0,
                  size=size, version=seq, digest=digest)


class Stager:
    """One payload being staged: begin(envelope) -> write(data)... -> finish(install).
    With checkpoint, the DOWNLOADING record's resume point is journaled about every 32 KiB."""

    def __init__(self, ld, checkpoint=True):
        self.ld = ld
        self.rec = None
        self.plan = None
        self.offset = 0
        self.size = 0
        self.digest = None
        self.version = 0
        self.component = J.COMPONENT_APP
        self.h = None
        self.w = None
        self._since = 0
        self._cp = CHECKPOINT if checkpoint else 0
        self.decrypted = False  # what write() gets is plaintext an EncryptedStager decrypted

    def begin(self, envelope, resume=True):
        """Verify the envelope for this device; open (or, with resume, continue) the
        DOWNLOADING record. Returns the offset the payload must continue from. A heap that
        runs out meanwhile is a MemoryShortError (an open DOWNLOADING record is FAILED)."""
        try:
            return self._begin(envelope, resume)
        except MemoryError:
            self.out_of_memory()

    def _begin(self, envelope, resume):
        return self._open(check(self.ld, envelope), resume)

    def open(self, checked, resume=True):
        """begin() for an envelope check() already verified."""
        try:
            return self._open(checked, resume)
        except MemoryError:
            self.out_of_memory()

    def _open(self, checked, resume):
        ld = self.ld
        cur, plan, size, digest, comp = checked
        if plan.components[0].delta() is not None or (
                not self.decrypted and encrypted_source(plan) is not None):
            raise SuitUnsupported("a delta or encrypted payload: open its staging with "
                                  "staging.begin()")
        self.plan = plan
        self.size = size
        self.digest = digest
        self.version = plan.seq
        self.component = comp
        sector = ld.staging.sector
        if self._cp:
            self._cp = CHECKPOINT - CHECKPOINT % sector or sector
        self.h = hashlib.sha256()
        self.rec, self.offset = resume_or_open(ld, cur, plan.seq, size, digest, comp, resume,
                                               self.h)
        self.w = PageWriter(ld.staging, self.offset)
        self._since = 0
        return self.offset

    def write(self, data):
        """Hash and program the next bytes of the payload (any length). More bytes than the
        manifest's size: the record is FAILED (SizeError)."""
        mv = memoryview(data)
        n = len(mv)
        if self.offset + n > self.size:
            self._fail(SizeError("payload is longer than the manifest's image size"))
        if not self._cp:
            self.h.update(mv)
            self.w.write(mv)
            self.offset += n
            return n
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
        """Check size and digest (and a loader release's image); record STAGED, with
        INSTALL_REQUESTED when install. Returns the STAGED record."""
        self.w.flush()
        if self.offset != self.size:
            self._fail(SizeError("payload is shorter than the manifest's image size"))
        if self.h.digest() != self.digest:
            self._fail(DigestError("payload does not match the manifest's image digest"))
        ld = self.ld
        if self.component == J.COMPONENT_LOADER:
            # stage0 checks its signature and counter at the next boot; here: is it a loader
            # image for this board's slot at all
            from loader import loader_image

            try:
                loader_image.check(ld.staging, self.size,
                                   getattr(ld.board, "loader_address", None))
            except LoaderImageError as err:
                self._fail(err)
        self.rec = staged(ld, self.rec, install)
        return self.rec

    def _fail(self, err):
        self.ld.fail(self.rec, err.code)
        raise err

    refuse = _fail  # FAILED with err's code, and err raised: for a stager built on this one

    def out_of_memory(self):
        """The heap ran out while this update was verified or staged: MemoryShortError, and the
        update's DOWNLOADING record (once opened) is FAILED. Nothing else changes."""
        import gc

        self.h = self.w = self.plan = None
        gc.collect()
        err = MemoryShortError("not enough memory to verify and stage this update")
        rec = self.ld.journal.current
        if rec.state == J.DOWNLOADING:
            self.ld.fail(rec, err.code)
        raise err


def staged(ld, rec, install):
    """Record STAGED for the payload of the DOWNLOADING record rec, once it verified (full or
    delta alike): the slot holds rec.size bytes whose SHA-256 is rec.digest."""
    flags = rec.flags | (J.FLAG_INSTALL_REQUESTED if install else 0)
    return ld.journal.append(rec.copy(state=J.STAGED, progress=rec.size, flags=flags))


def stage(ld, envelope, stream, install=True, now=None):
    """Verify envelope, then copy the payload from stream (readinto) into the staging slot in
    one go, hashing as it goes (a delta patch: applied as it comes); STAGED (with
    INSTALL_REQUESTED when install). Returns the SUIT
    plan. A heap that runs out on the way is a MemoryShortError, never a crash."""
    st = Stager(ld, checkpoint=False)
    try:
        checked = check(ld, envelope, now=now)
        if checked[1].components[0].delta() is not None:
            # a patch always comes from its start; its segments are journaled, so staging it
            # again after a reset skips those already applied
            st = _stager_for(ld, checked, st, True)
            st.open(checked, resume=True)
        else:
            st = _stager_for(ld, checked, st, False)
            st.open(checked, resume=False)
        buf = ld.buf
        mv = memoryview(buf)
        while True:
            n = stream.readinto(buf)
            if not n:
                break
            st.write(mv[:n])
        st.finish(install)
    except MemoryError:
        st.out_of_memory()
    return st.plan


def abandon(ld, code=ABORTED):
    """Discard a download in progress or a staged update that was not yet asked to install
    (the scheduler aborted it): the journal records FAILED with code; the slot is simply
    reused later. Returns the current record."""
    r = ld.journal.current
    if not (
        r.state == J.DOWNLOADING
        or (r.state == J.STAGED and not r.flags & J.FLAG_INSTALL_REQUESTED)
    ):
        raise StateError("nothing to discard (%s)" % r.name())
    ld.fail(r, code)
    return ld.journal.current
