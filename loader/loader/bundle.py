# Application bundles: docs/formats/bundle.md is the definition; host/suture/bundle.py builds
# them. A bundle is a canonical archive: serializing the installed directory again gives the same
# bytes, so "the installed copy matches the signed digest" is one SHA-256 over the directory.
import os
import struct

from micropython import const

from loader.errors import BundleError, SizeError

MAGIC = b"SUTB"
VERSION = const(1)
HEADER = const(8)
ENTRY = const(6)
MAX_FILES = const(64)
MAX_PATH = const(64)
_ALLOWED = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/"


def check_path(p):
    """A relative path of allowed characters, no empty, '.' or '..' part, no leading dot."""
    if not 0 < len(p) <= MAX_PATH:
        raise BundleError("path length %d out of 1..%d" % (len(p), MAX_PATH))
    for ch in p:
        if ch not in _ALLOWED:
            raise BundleError("path has a character outside [A-Za-z0-9._-/]")
    for part in p.split(b"/"):
        if not part or part[0] == 0x2E:  # '.'
            raise BundleError("path part empty or starting with '.'")


class Reader:
    """Parse a bundle from a stream (readinto), hashing every byte read when given `hasher`.
    next() -> (path: bytes, size) or None at the end; read(buf) -> file bytes into buf."""

    def __init__(self, stream, total, hasher=None):
        self.s = stream
        self.total = total
        self.h = hasher
        self.pos = 0
        self.left = 0
        self.count = -1
        self.seen = 0
        self.last = b""
        self._hdr = bytearray(HEADER)
        self._pathbuf = bytearray(MAX_PATH)

    def _fill(self, mv):
        n = len(mv)
        if self.pos + n > self.total:
            raise BundleError("bundle truncated")
        got = 0
        while got < n:
            k = self.s.readinto(mv[got:])
            if not k:
                raise BundleError("bundle truncated")
            got += k
        if self.h is not None:
            self.h.update(mv)
        self.pos += n

    def next(self):
        if self.left:
            raise BundleError("previous file not read to its end")
        if self.count < 0:
            self._fill(memoryview(self._hdr))
            if self._hdr[:4] != MAGIC or self._hdr[4] != VERSION:
                raise BundleError("not a version-1 bundle")
            self.count = struct.unpack_from("<H", self._hdr, 6)[0]
            if self.count > MAX_FILES:
                raise SizeError("bundle of %d files (max %d)" % (self.count, MAX_FILES))
        if self.seen == self.count:
            if self.pos != self.total:
                raise BundleError("bytes after the last file")
            return None
        mv = memoryview(self._hdr)
        self._fill(mv[:ENTRY])
        plen, size = struct.unpack_from("<HI", self._hdr, 0)
        if not 0 < plen <= MAX_PATH:
            raise BundleError("path length %d" % plen)
        pm = memoryview(self._pathbuf)[:plen]
        self._fill(pm)
        path = bytes(pm)
        check_path(path)
        if path <= self.last:
            raise BundleError("paths not in strictly increasing order")
        if size > self.total - self.pos:
            raise BundleError("file larger than the bundle")
        self.last = path
        self.seen += 1
        self.left = size
        return path, size

    def read(self, buf):
        n = len(buf) if len(buf) < self.left else self.left
        if n == 0:
            return 0
        mv = memoryview(buf)[:n]
        self._fill(mv)
        self.left -= n
        return n


def verify_stream(stream, total, hasher, buf):
    """Read a whole bundle, checking its structure; the caller's hasher sees every byte."""
    r = Reader(stream, total, hasher)
    while r.next() is not None:
        while r.read(buf):
            pass


def _walk(root, prefix, out):
    for entry in os.ilistdir(root):
        name = entry[0]
        full = root + "/" + name
        rel = prefix + name
        if entry[1] == 0x4000:
            _walk(full, rel + "/", out)
        else:
            out.append(rel.encode())


def list_files(root):
    out = []
    try:
        _walk(root, "", out)
    except OSError:
        return []
    out.sort()
    return out


def serialize(root, sink, buf):
    """Write the canonical bundle of directory root to sink.write(); returns the byte count."""
    files = list_files(root)
    if len(files) > MAX_FILES:
        raise SizeError("more than %d files" % MAX_FILES)
    hdr = bytearray(HEADER)
    hdr[:4] = MAGIC
    hdr[4] = VERSION
    struct.pack_into("<H", hdr, 6, len(files))
    sink.write(hdr)
    total = HEADER
    mv = memoryview(buf)
    for path in files:
        full = root + "/" + path.decode()
        size = os.stat(full)[6]
        sink.write(struct.pack("<HI", len(path), size))
        sink.write(path)
        total += ENTRY + len(path) + size
        with open(full, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                sink.write(mv[:n])
    return total


class HashSink:
    def __init__(self, hasher):
        self.h = hasher

    def write(self, data):
        self.h.update(data)
