# Versioned NVM store in the external flash's `nvm` region: docs/formats/nvm.md is the definition.
# Two banks; each holds a header (application version, generation), the records of a complete
# copy, a commit marker, then appended records. A record carries its schema version and a CRC:
# a torn record fails its CRC and is skipped, so a record is never half-written. An update
# copies (migrates) the confirmed bank into the other bank; the copy serves the new version
# while the confirmed bank stays untouched until a later update reuses it. Records put with
# keep=True (anti-replay numbers, say) and written by the running application are carried into
# the older bank before a revert or a superseding update discards the bank they were written in.
import struct
from binascii import crc32

from micropython import const

from loader.errors import MigrationError, NvmError, NvmFull, SizeError

UNIT = const(16)
BANK_MAGIC = b"NVB1"
COMMIT_MAGIC = b"NVC1"
REC_MAGIC = b"\xa5\x5a"
REC_HDR = const(12)
MAX_KEY = const(32)
MAX_VALUE = const(512)
MAX_KEYS = const(128)
FLAG_DELETED = const(1)
FLAG_KEEP = const(2)
_APPENDED = const(0x80)  # in memory only: written after the commit marker
_TRUST = b"trust."  # the trust anchors: copied as they are, never through a migration


def _pad(n):
    return (n + UNIT - 1) // UNIT * UNIT


class Bank:
    def __init__(self, region, index, base, size):
        self.region = region
        self.index = index
        self.base = base
        self.size = size
        self.valid = False
        self.committed = False
        self.version = 0
        self.generation = 0
        self.end = UNIT
        self.index_map = {}  # key -> (offset of value, length, schema, flags)

    def scan(self, buf):
        """Read the header and every record; buf: scratch of at least REC_HDR + MAX_KEY."""
        self.valid = self.committed = False
        self.index_map = {}
        h = memoryview(buf)[:UNIT]
        self.region.read(self.base, h)
        if bytes(h[:4]) != BANK_MAGIC or struct.unpack_from("<I", h, 12)[0] != crc32(h[:12]):
            return self
        self.version, self.generation = struct.unpack_from("<II", h, 4)
        self.valid = True
        pos = UNIT
        hdr = memoryview(buf)[: REC_HDR + MAX_KEY]
        while pos + UNIT <= self.size:
            u = hdr[:UNIT]
            self.region.read(self.base + pos, u)
            blank = True
            for b in u:
                if b != 0xFF:
                    blank = False
                    break
            if blank:
                break
            if bytes(u[:4]) == COMMIT_MAGIC:
                if struct.unpack_from("<I", u, 12)[0] == crc32(u[:12]):
                    self.committed = True
                pos += UNIT
                continue
            if bytes(u[:2]) == REC_MAGIC:
                klen = u[2]
                flags = u[3]
                vlen, schema, crc = struct.unpack_from("<HHI", u, 4)
                total = _pad(REC_HDR + klen + vlen)
                if klen <= MAX_KEY and vlen <= MAX_VALUE and pos + total <= self.size \
                        and self._crc_ok(pos, klen, vlen, crc, buf):
                    kb = hdr[REC_HDR : REC_HDR + klen]
                    self.region.read(self.base + pos + REC_HDR, kb)
                    key = bytes(kb)
                    if flags & FLAG_DELETED:
                        self.index_map.pop(key, None)
                    else:
                        if self.committed:
                            flags |= _APPENDED
                        self.index_map[key] = (pos + REC_HDR + klen, vlen, schema, flags)
                    pos += total
                    continue
            pos += UNIT  # torn or foreign unit: skip it, never reuse it
        self.end = pos
        return self

    def _crc_ok(self, pos, klen, vlen, want, buf):
        mv = memoryview(buf)
        n = REC_HDR - 4 + klen + vlen
        crc = 0
        a = self.base + pos
        self.region.read(a, mv[:8])
        crc = crc32(mv[:8], crc)
        a += REC_HDR
        n -= 8
        while n > 0:
            k = n if n < len(buf) else len(buf)
            self.region.read(a, mv[:k])
            crc = crc32(mv[:k], crc)
            a += k
            n -= k
        return crc == want

    def read_value(self, key):
        e = self.index_map.get(key)
        if e is None:
            return None
        buf = bytearray(e[1])
        self.region.read(self.base + e[0], buf)
        return e[2], bytes(buf)

    def format(self, version, generation):
        self.region.erase_range(self.base, self.size)
        h = bytearray(UNIT)
        h[:4] = BANK_MAGIC
        struct.pack_into("<II", h, 4, version, generation)
        struct.pack_into("<I", h, 12, crc32(memoryview(h)[:12]))
        self.region.program(self.base, h)
        self.valid = True
        self.committed = False
        self.version = version
        self.generation = generation
        self.end = UNIT
        self.index_map = {}

    def commit(self):
        u = bytearray(UNIT)
        u[:4] = COMMIT_MAGIC
        struct.pack_into("<I", u, 4, len(self.index_map))
        struct.pack_into("<I", u, 12, crc32(memoryview(u)[:12]))
        self._append(u)
        self.committed = True

    def _append(self, data):
        if self.end + len(data) > self.size:
            raise NvmFull("NVM bank full")
        self.region.program(self.base + self.end, data)
        self.end += len(data)

    def write_record(self, key, value, schema, flags=0):
        klen = len(key)
        vlen = len(value)
        total = _pad(REC_HDR + klen + vlen)
        if self.end + total > self.size:
            raise NvmFull("NVM bank full")
        rec = bytearray(b"\xff" * total)
        rec[:2] = REC_MAGIC
        rec[2] = klen
        rec[3] = flags
        struct.pack_into("<HH", rec, 4, vlen, schema)
        rec[REC_HDR : REC_HDR + klen] = key
        rec[REC_HDR + klen : REC_HDR + klen + vlen] = value
        mv = memoryview(rec)
        crc = crc32(mv[REC_HDR : REC_HDR + klen + vlen], crc32(mv[:8]))
        struct.pack_into("<I", rec, 8, crc)
        pos = self.end
        self._append(rec)
        if flags & FLAG_DELETED:
            self.index_map.pop(key, None)
        else:
            if self.committed:
                flags |= _APPENDED
            self.index_map[key] = (pos + REC_HDR + klen, vlen, schema, flags)


class Nvm:
    """The store as the running application `version` sees it."""

    def __init__(self, region, version, trial=False, buf=None):
        self.region = region
        self.trial = trial
        self.buf = buf if buf is not None else bytearray(REC_HDR + MAX_KEY + 64)
        half = (region.size // region.sector // 2) * region.sector
        if half == 0:
            raise NvmError("NVM region smaller than two sectors")
        self.banks = [Bank(region, 0, 0, half), Bank(region, 1, half, half)]
        for b in self.banks:
            b.scan(self.buf)
        self.version = version
        self.bank = self.select(version)

    def select(self, version):
        """The complete bank with the highest (version, generation) not above version."""
        best = None
        for b in self.banks:
            if b.valid and b.committed and b.version <= version and (
                    best is None or (b.version, b.generation) > (best.version, best.generation)):
                best = b
        return best

    def _ensure(self):
        if self.bank is None:
            b = self.banks[0]
            b.format(self.version, 1)
            b.commit()
            self.bank = b
        return self.bank

    def get(self, key):
        """(schema, value) or None."""
        if self.bank is None:
            return None
        return self.bank.read_value(_key(key))

    def keys(self):
        return sorted(self.bank.index_map) if self.bank else []

    def put(self, key, value, schema, keep=False):
        """Write key. keep=True: the value outlives this bank (see _carry): a revert or a
        superseding update keeps the latest kept value instead of the older bank's."""
        key = _key(key)
        flags = FLAG_KEEP if keep else 0
        if len(value) > MAX_VALUE:
            raise SizeError("NVM value longer than %d bytes" % MAX_VALUE)
        if not 0 <= schema < 0x10000:
            raise NvmError("schema version out of range")
        b = self._ensure()
        if key not in b.index_map and len(b.index_map) >= MAX_KEYS:
            raise NvmFull("more than %d keys" % MAX_KEYS)
        try:
            b.write_record(key, value, schema, flags)
        except NvmFull:
            self.compact()
            self.bank.write_record(key, value, schema, flags)

    def delete(self, key):
        key = _key(key)
        b = self._ensure()
        if key in b.index_map:
            try:
                b.write_record(key, b"", 0, FLAG_DELETED)
            except NvmFull:
                self.compact()
                self.bank.write_record(key, b"", 0, FLAG_DELETED)

    def _other(self, b):
        return self.banks[1 - b.index]

    def _copy(self, src, dst, version, generation, fn):
        dst.format(version, generation)
        for key in sorted(src.index_map):
            flags = src.index_map[key][3] & FLAG_KEEP
            schema, value = src.read_value(key)
            if fn is not None and not key.startswith(_TRUST):  # anchors: loader/trust.py
                out = _migrated(fn, key, schema, value)
                if out is None:
                    continue
                schema, value = out
            dst.write_record(key, value, schema, flags)
        dst.commit()

    def _carry(self, dst, version):
        """Copy the kept records that the application of a version above `version` wrote
        (appended after its bank's commit marker: not the copies a migration made) into dst,
        before that bank is erased or reused. Each is appended only when dst's value differs, so
        a resumed revert or migration writes nothing twice; a cut leaves the old value or the
        new one (records are never half-written). Best effort when dst is full: no compaction
        here, as its target would be the very bank being carried from."""
        for b in self.banks:
            if b is dst or not (b.valid and b.committed and b.version > version):
                continue
            for key in sorted(b.index_map):
                if b.index_map[key][3] & (FLAG_KEEP | _APPENDED) != FLAG_KEEP | _APPENDED:
                    continue
                rec = b.read_value(key)
                if dst.read_value(key) != rec:
                    try:
                        dst.write_record(key, rec[1], rec[0], FLAG_KEEP)
                    except NvmFull:
                        return

    def compact(self):
        """Rewrite the live records into the other bank (same version, next generation). Refused
        while the other bank holds an older version's data that a revert may need."""
        b = self.bank
        o = self._other(b)
        if self.trial and o.valid and o.committed and o.version < b.version:
            raise NvmFull("NVM bank full during a trial (the confirmed copy must be kept)")
        self._copy(b, o, b.version, b.generation + 1, None)
        self.bank = o

    def migrated(self, version):
        """The complete bank made for version (its migration finished), or None."""
        for b in self.banks:
            if b.valid and b.committed and b.version == version:
                return b
        return None

    def migrate(self, confirmed_version, new_version, fn):
        """Copy the confirmed data into the other bank for new_version, through fn(key, schema,
        value) -> (schema, value) | None. Idempotent: a complete bank of new_version is kept.
        fn is the application's code: MigrationError when it raises or returns anything else."""
        done = self.migrated(new_version)
        if done is not None:
            return done
        src = self._bank_for(confirmed_version)
        if src is not None:
            self._carry(src, confirmed_version)  # a trial being superseded: keep its kept records
        if src is None:
            dst = self.banks[0]
            dst.format(new_version, 1)
            dst.commit()
            return dst
        dst = self._other(src)
        self._copy(src, dst, new_version, src.generation + 1, fn)
        return dst

    def _bank_for(self, version):
        """select(version); when it finds none and a bank above version holds kept records to
        carry, an empty committed bank for version, made in the bank that holds none."""
        got = self.select(version)
        if got is not None:
            return got
        carry = [b for b in self.banks if b.valid and b.committed and b.version > version
                 and any(f[3] & (FLAG_KEEP | _APPENDED) == FLAG_KEEP | _APPENDED
                         for f in b.index_map.values())]
        for b in self.banks:
            if b not in carry:
                b.format(version, 1)
                b.commit()
                return b
        return None

    def drop_above(self, version):
        """Invalidate banks made for versions above `version` (after a revert), carrying
        their kept records into the bank that `version` uses first. When `version` has no bank
        (its application never wrote one) and there are kept records to carry, an empty bank is
        made for it first (in the bank that holds none of them)."""
        dst = self._bank_for(version)
        if dst is not None:
            self._carry(dst, version)
        for b in self.banks:
            if b.valid and b.version > version:
                self.region.erase(b.base)
                b.scan(self.buf)
        self.bank = self.select(self.version)


def _migrated(fn, key, schema, value):
    """fn(key, schema, value), checked: None (the record is dropped) or (schema, value) with a
    schema in 0..0xFFFF and a value of at most MAX_VALUE bytes. Whatever fn raises (an error,
    a recursion without end, memory) becomes a MigrationError."""
    try:
        out = fn(key, schema, value)
    except Exception as e:
        raise MigrationError("migration of %s raised %s: %s" % (key, type(e).__name__, e))
    if out is None:
        return None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise MigrationError("migration of %s returned %s, not None or (schema, value)"
                             % (key, type(out).__name__))
    schema, value = out
    if not isinstance(schema, int) or isinstance(schema, bool) or not 0 <= schema < 0x10000:
        raise MigrationError("migration of %s returned a schema outside 0..65535" % key)
    if not isinstance(value, (bytes, bytearray)) or len(value) > MAX_VALUE:
        raise MigrationError("migration of %s returned a value that is not bytes of at most "
                             "%d" % (key, MAX_VALUE))
    return schema, bytes(value)


def _key(key):
    if isinstance(key, str):
        key = key.encode()
    if not 0 < len(key) <= MAX_KEY:
        raise SizeError("NVM key length out of 1..%d" % MAX_KEY)
    return key
