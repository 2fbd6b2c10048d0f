# Delta staging (docs/formats/delta.md): the payload is a patch from the installed image to the
# signed target: for the application, its canonical bundle, read from the backup slot; for the
# loader, the loader image in the loader slot (the board's "loader" region, only ever read).
# Nothing is written before the envelope verifies, and the envelope's condition names the one
# source image the patch applies to. The patch is written at the tail of the staging slot as it
# arrives; each segment is applied as soon as its bytes are in flash (zlib through `deflate`,
# bsdiff-style operations) into the head of the slot, hashed as it is written. The target is
# then verified against the manifest's digest and recorded STAGED like a full payload: the
# install is the same.
#
# Memory: two 512-byte blocks, a 256-byte read buffer, a page buffer for each writer, and the
# decompressor's window (at most 2**window_bits bytes, 32 KiB at the very most), whatever the
# image's size.
#
# Resuming: the DOWNLOADING record's progress is the target bytes written and verified, always
# a segment boundary (the segment size is a multiple of the flash sector). After a reset the
# patch comes again from its start (it is a few percent of the image); segments below the
# resume point are written to the tail but not applied again. The target bytes staged so far are
# the same whoever wrote them, so a delta and a full payload of the same release resume each
# other's staging.
#
# The format's constants are a copy of host/suture/delta/format.py, checked both ways by
# tests/delta/test_format_copies.py.
import hashlib
import io
import struct
from binascii import crc32

from micropython import const

from loader import journal as J
from loader.errors import (
    ConditionFailed,
    DeltaError,
    DigestError,
    LoaderImageError,
    MemoryShortError,
    SizeError,
)
from loader.flash import PageWriter

MAGIC = b"SUDL"
VERSION = const(1)
HEADER_FORMAT = "<4sBBHIIIII32s32s"
HEADER_SIZE = const(96)
ENTRY_FORMAT = "<Ii"
ENTRY_SIZE = const(8)
MIN_WINDOW_BITS = const(9)
MAX_WINDOW_BITS = const(15)
SECTOR = const(4096)
MAX_SEGMENTS = const(4096)
MAX_VARINT_BYTES = const(5)
OFF_MAGIC = const(0)
OFF_VERSION = const(4)
OFF_WINDOW_BITS = const(5)
OFF_RESERVED = const(6)
OFF_SEGMENT_SIZE = const(8)
OFF_SOURCE_SIZE = const(12)
OFF_TARGET_SIZE = const(16)
OFF_SEGMENTS = const(20)
OFF_PATCH_SIZE = const(24)
OFF_SOURCE_DIGEST = const(28)
OFF_TARGET_DIGEST = const(60)
OFF_HEADER_CRC = const(92)

_BLOCK = const(512)  # the diff/extra block buffer and the source buffer, each
_READ = const(256)  # the patch's read-back buffer (the decompressor asks one byte at a time)
_BACKUP_DATA = const(256)  # where the backup slot's bundle starts (loader.core.BACKUP_DATA)
_ZEROS = memoryview(bytes(64))
_ONE = bytearray(1)


def _round(n, sector):
    return (n + sector - 1) // sector * sector


class _FlashStream(io.IOBase):
    """[start, start + size) of a region as a stream, through a small buffer."""

    def __init__(self, region, buf):
        self.region = region
        self.buf = buf
        self.pos = 0
        self.end = 0
        self.fill = 0
        self.used = 0

    def reset(self, start, size):
        self.pos = start
        self.end = start + size
        self.fill = self.used = 0

    def readinto(self, out):
        if self.used == self.fill:
            n = self.end - self.pos
            if n <= 0:
                return 0
            if n > len(self.buf):
                n = len(self.buf)
            self.region.read(self.pos, memoryview(self.buf)[:n])
            self.pos += n
            self.fill = n
            self.used = 0
        n = self.fill - self.used
        if n > len(out):
            n = len(out)
        out[:n] = memoryview(self.buf)[self.used : self.used + n]
        self.used += n
        return n


class DeltaStager:
    """One delta payload being staged: begin(checked) -> write(patch bytes)... -> finish().
    .offset and .size are the patch's (what is downloaded), .digest its SHA-256; .image_size,
    .image_digest, .version and .component are the signed target's."""

    def __init__(self, ld, checkpoint=True):
        self.ld = ld
        self.checkpoint = checkpoint
        self.rec = None
        self.plan = None
        self.offset = 0
        self.size = 0
        self.digest = None
        self.image_size = 0
        self.image_digest = None
        self.version = 0
        self.component = J.COMPONENT_APP
        self.delta = True
        self.done = 0  # target bytes written, verified and hashed
        self.seg = 0  # the next segment to apply
        self.hdr = None
        self.need = HEADER_SIZE  # patch bytes that must be in flash before the next step
        self.block = bytearray(_BLOCK)
        self.src = bytearray(_BLOCK)
        self.stream = _FlashStream(ld.staging, bytearray(_READ))
        self.ph = None  # SHA-256 of the patch
        self.th = None  # SHA-256 of the target
        self.pw = None
        self.tw = None
        self.tail = 0  # where the patch starts in the staging slot
        self.source = None  # the region the source image is read from, and where in it
        self.source_at = 0

    # ---- begin ---------------------------------------------------------------------------
    def open(self, checked, resume=True):
        """Open (or resume) the staging of a verified delta envelope. checked is what
        loader.staging.check returned. Returns the patch offset the download starts at (0)."""
        try:
            return self._open(checked, resume)
        except MemoryError:
            self.out_of_memory()

    def _open(self, checked, resume):
        from loader.staging import resume_or_open

        ld = self.ld
        cur, plan, size, digest, comp = checked
        src_digest, src_size, patch_digest, patch_size = plan.components[0].delta()
        sector = ld.staging.sector
        if _round(size, sector) + _round(patch_size, sector) > ld.staging.size:
            raise SizeError("the target and its patch do not fit in the staging slot together")
        if comp == J.COMPONENT_APP:
            self._source(cur, src_digest, src_size)
            self.source = ld.backup
            self.source_at = _BACKUP_DATA
        elif comp == J.COMPONENT_LOADER:
            # the loader slot held the source when check() ran its condition, a moment ago;
            # nothing writes it but stage0, and only once this update is STAGED
            from loader.staging import loader_slot

            self.source = loader_slot(ld)
            self.source_at = 0
            if self.source is None or src_size > self.source.size:
                raise ConditionFailed("the patch's source image is not on this device")
        else:
            raise LoaderImageError("a delta for a component this device does not have")
        self.plan = plan
        self.size = patch_size
        self.digest = patch_digest
        self.image_size = size
        self.image_digest = digest
        self.version = plan.seq
        self.component = comp
        self.src_size = src_size
        self.src_digest = src_digest
        self.tail = ld.staging.size - _round(patch_size, sector)
        self.th = hashlib.sha256()
        self.ph = hashlib.sha256()
        self.rec, self.done = resume_or_open(ld, cur, plan.seq, size, digest, comp, resume,
                                             self.th)
        self.offset = 0
        self.pw = PageWriter(ld.staging, self.tail)
        self.tw = None
        self.hdr = None
        self.need = HEADER_SIZE
        return 0

    def _source(self, cur, digest, size):
        """Make the backup slot hold the patch's source: the installed application's bundle.
        While the running application is an unconfirmed trial, the backup holds the confirmed
        one and must stay so: the patch applies only when that is its source."""
        ld = self.ld
        hdr = ld.backup_header()
        if hdr is not None and hdr.digest == digest and hdr.size == size:
            return
        inst = ld.installed()
        trial = cur.component == J.COMPONENT_APP and (
            cur.state == J.TRIAL or (cur.state not in J.CLOSED and cur.flags & J.FLAG_KEEP_BACKUP))
        if trial or inst.digest != digest or inst.size != size:
            raise ConditionFailed("the patch's source image is not on this device")
        if not ld.write_backup():
            raise SizeError("the installed application does not fit in the backup slot")

    # ---- patch bytes in --------------------------------------------------------------------
    def write(self, data):
        """Program the next patch bytes at the slot's tail; apply every segment they complete.
        A malformed or corrupt patch is a DeltaError and the record is FAILED."""
        mv = memoryview(data)
        n = len(mv)
        if self.offset + n > self.size:
            self._fail(SizeError("patch is longer than the manifest's patch size"))
        self.ph.update(mv)
        self.pw.write(mv)
        self.offset += n
        try:
            while self.offset >= self.need and self.need <= self.size:
                self.pw.flush()
                self._step()
        except (DeltaError, DigestError) as err:
            self._fail(err)
        except (OSError, ValueError, EOFError) as err:  # the decompressor's errors
            self._fail(DeltaError("segment %d does not decompress: %r" % (self.seg, err)))
        except MemoryError:
            self.out_of_memory()
        return n

    def _step(self):
        if self.hdr is None:
            self._read_header()
            self.need = HEADER_SIZE + self.hdr[5] * ENTRY_SIZE + 4
        elif self.tw is None:
            self._check_table()
            if self.done % self.hdr[1]:
                # staged by a payload whose checkpoints are not this patch's segments: again
                self.done = 0
                self.th = hashlib.sha256()
            self.seg = self.done // self.hdr[1]
            self.tw = PageWriter(self.ld.staging, self.done)
            self.need = self._segment_end(self.seg) if self.seg < self.hdr[5] else self.size + 1
        else:
            self._apply_segment(self.seg)
            self.seg += 1
            self.need = self._segment_end(self.seg) if self.seg < self.hdr[5] else self.size + 1

    def _read_header(self):
        b = self.block
        self.ld.staging.read(self.tail, memoryview(b)[:HEADER_SIZE])
        body = memoryview(b)[: HEADER_SIZE - 4]
        if struct.unpack_from("<I", b, OFF_HEADER_CRC)[0] != crc32(body):
            raise DeltaError("patch header CRC does not match")
        f = struct.unpack_from(HEADER_FORMAT, b, 0)
        if f[0] != MAGIC or f[1] != VERSION or f[3] != 0:
            raise DeltaError("not a delta patch (magic, version or reserved field)")
        wbits, segsize, ssize, tsize, nseg, psize = f[2], f[4], f[5], f[6], f[7], f[8]
        if not MIN_WINDOW_BITS <= wbits <= MAX_WINDOW_BITS:
            raise DeltaError("window of 2**%d bytes" % wbits)
        if segsize < SECTOR or segsize % SECTOR or segsize % self.ld.staging.sector:
            raise DeltaError("segment size %d is not a multiple of the sector" % segsize)
        if nseg != (tsize + segsize - 1) // segsize or nseg > MAX_SEGMENTS:
            raise DeltaError("segment count does not match the target size")
        if (ssize != self.src_size or bytes(f[9]) != self.src_digest or tsize != self.image_size
                or bytes(f[10]) != self.image_digest or psize != self.size):
            raise DeltaError("the patch header is not the manifest's source, target or patch")
        if psize < HEADER_SIZE + nseg * ENTRY_SIZE + 4:
            raise DeltaError("patch size smaller than its header and table")
        self.hdr = (wbits, segsize, ssize, tsize, psize, nseg)

    def _check_table(self):
        n = self.hdr[5] * ENTRY_SIZE
        b = self.block
        mv = memoryview(b)
        crc = 0
        at = self.tail + HEADER_SIZE
        left = n
        while left:
            k = left if left < _BLOCK else _BLOCK
            self.ld.staging.read(at, mv[:k])
            crc = crc32(mv[:k], crc)
            at += k
            left -= k
        self.ld.staging.read(at, mv[:4])
        if struct.unpack_from("<I", b, 0)[0] != crc:
            raise DeltaError("segment table CRC does not match")

    def _entry(self, k):
        b = self.block
        self.ld.staging.read(self.tail + HEADER_SIZE + k * ENTRY_SIZE, memoryview(b)[:ENTRY_SIZE])
        return struct.unpack_from(ENTRY_FORMAT, b, 0)

    def _segment_end(self, k):
        if k + 1 < self.hdr[5]:
            return self._entry(k + 1)[0]
        return self.size

    def _apply_segment(self, k):
        import gc

        import deflate

        wbits, segsize, ssize, tsize = self.hdr[0], self.hdr[1], self.hdr[2], self.hdr[3]
        start, pos = self._entry(k)
        end = self._segment_end(k)
        first = HEADER_SIZE + self.hdr[5] * ENTRY_SIZE + 4
        if start < first or end <= start + 2 or end > self.size:
            raise DeltaError("segment %d lies outside the patch" % k)
        if not 0 <= pos <= ssize:
            raise DeltaError("segment %d starts outside the source image" % k)
        head = memoryview(self.src)[:2]
        self.ld.staging.read(self.tail + start, head)
        if head[0] & 0x0F != 8 or (head[0] >> 4) + 8 > wbits or (head[0] * 256 + head[1]) % 31:
            raise DeltaError("segment %d is not a zlib stream within the patch's window" % k)
        self.stream.reset(self.tail + start, end - start)
        gc.collect()  # the last segment's window is free: its block is reused, not a new one
        d = deflate.DeflateIO(self.stream, deflate.ZLIB)
        want = tsize - k * segsize
        if want > segsize:
            want = segsize
        got = 0
        blk = memoryview(self.block)
        src = memoryview(self.src)
        source = self.source
        at = self.source_at
        th = self.th
        tw = self.tw
        while True:
            n = _uvarint(d)
            if got + n > want or pos < 0 or pos + n > ssize:
                raise DeltaError("segment %d: diff block outside the segment or the source" % k)
            got += n
            while n:
                m = n if n < _BLOCK else _BLOCK
                _read_exact(d, blk[:m])
                source.read(at + pos, src[:m])
                _add(blk, src, m)
                th.update(blk[:m])
                tw.write(blk[:m])
                pos += m
                n -= m
            if got == want:
                break
            n = _uvarint(d)
            if got + n > want:
                raise DeltaError("segment %d: extra block past the segment's end" % k)
            got += n
            while n:
                m = n if n < _BLOCK else _BLOCK
                _read_exact(d, blk[:m])
                th.update(blk[:m])
                tw.write(blk[:m])
                n -= m
            if got == want:
                break
            v = _uvarint(d)
            pos += (v >> 1) ^ -(v & 1)
        if d.readinto(blk[:1]):
            raise DeltaError("segment %d: bytes after its last operation" % k)
        tw.flush()
        self.done += want
        if self.checkpoint and self.done < tsize:
            # the writer is on a sector boundary (segments are whole sectors)
            self.rec = self.ld.journal.append(self.rec.copy(progress=self.done))

    # ---- end -------------------------------------------------------------------------------
    def finish(self, install=False):
        """Check the patch (size, digest) and the target (every segment applied, size, digest);
        record STAGED, with INSTALL_REQUESTED when install. Returns the STAGED record."""
        self.pw.flush()
        if self.offset != self.size:
            self._fail(SizeError("patch is shorter than the manifest's patch size"))
        if self.ph.digest() != self.digest:
            self._fail(DigestError("patch does not match the manifest's patch digest"))
        if self.hdr is None or self.seg != self.hdr[5] or self.done != self.image_size:
            self._fail(DeltaError("the patch did not produce the whole target"))
        if self.th.digest() != self.image_digest:
            self._fail(DigestError("patched image does not match the manifest's image digest"))
        if self.component == J.COMPONENT_LOADER:
            # as for a full loader release: a loader image for this board's slot
            from loader import loader_image

            try:
                loader_image.check(self.ld.staging, self.image_size,
                                   getattr(self.ld.board, "loader_address", None))
            except LoaderImageError as err:
                self._fail(err)
        from loader.staging import staged

        self.rec = staged(self.ld, self.rec, install)
        return self.rec

    def _fail(self, err):
        self.ld.fail(self.rec, err.code)
        raise err

    def out_of_memory(self):
        import gc

        self.th = self.ph = self.pw = self.tw = self.plan = None
        gc.collect()
        err = MemoryShortError("not enough memory to verify and apply this delta")
        rec = self.ld.journal.current
        if rec.state == J.DOWNLOADING:
            self.ld.fail(rec, err.code)
        raise err


def _uvarint(d):
    v = 0
    shift = 0
    b = _ONE
    for _ in range(MAX_VARINT_BYTES):
        if not d.readinto(b):
            raise DeltaError("segment ends inside an operation")
        v |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            if v >> 32:
                raise DeltaError("varint larger than 32 bits")
            return v
        shift += 7
    raise DeltaError("varint longer than 5 bytes")


def _read_exact(d, mv):
    got = 0
    n = len(mv)
    while got < n:
        k = d.readinto(mv[got:])
        if not k:
            raise DeltaError("segment ends inside a block")
        got += k


def _add(blk, src, n):
    """blk[i] = blk[i] + src[i] (mod 256) for i < n; the all-zero runs of a diff (most of it)
    are copied at C speed."""
    i = 0
    while i < n:
        k = n - i if n - i < 64 else 64
        if blk[i : i + k] == _ZEROS[:k]:
            blk[i : i + k] = src[i : i + k]
        else:
            for j in range(i, i + k):
                blk[j] = (blk[j] + src[j]) & 0xFF
        i += k
