"""Application bundles: the archive the loader installs into littlefs (docs/formats/bundle.md).

A bundle is canonical: files sorted by their UTF-8 path bytes, each as ``u16 path length,
u32 size, path, data`` after an 8-byte header ``b"SUTB", 1, 0, u16 count`` (little-endian).
Serializing an installed directory again gives the same bytes, so the device checks its
installed copy with one SHA-256 against the signed digest.

>>> data = build_bundle({"main.py": b"print('hi')\\n"})
>>> parse_bundle(data)
{'main.py': b"print('hi')\\n"}
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from pathlib import Path

from suture.errors import SutureError

MAGIC = b"SUTB"
FORMAT_VERSION = 1
MAX_FILES = 64
MAX_PATH = 64
_PATH_RE = re.compile(r"[A-Za-z0-9._\-/]+")


class BundleError(SutureError, ValueError):
    """A bundle or a file set that does not follow the bundle format."""


def check_path(path: str) -> bytes:
    """Return the path's bytes, or raise BundleError when the device would refuse it."""
    raw = path.encode()
    if not 0 < len(raw) <= MAX_PATH:
        raise BundleError(f"path {path!r}: length must be 1..{MAX_PATH} bytes")
    if not _PATH_RE.fullmatch(path):
        raise BundleError(f"path {path!r}: only [A-Za-z0-9._-/] allowed")
    for part in path.split("/"):
        if not part or part.startswith("."):
            raise BundleError(f"path {path!r}: empty part or part starting with '.'")
    return raw


def build_bundle(files: Mapping[str, bytes]) -> bytes:
    """The canonical bundle holding ``files`` (path -> content)."""
    if len(files) > MAX_FILES:
        raise BundleError(f"{len(files)} files: at most {MAX_FILES}")
    entries = sorted((check_path(p), data) for p, data in files.items())
    out = bytearray(MAGIC + bytes((FORMAT_VERSION, 0)) + struct.pack("<H", len(entries)))
    for raw, data in entries:
        out += struct.pack("<HI", len(raw), len(data)) + raw + data
    return bytes(out)


def build_bundle_from_dir(root: Path) -> bytes:
    """The bundle of every file below ``root`` (paths relative to it, '/'-separated)."""
    files = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    return build_bundle(files)


def parse_bundle(data: bytes) -> dict[str, bytes]:
    """The files of a bundle, checked exactly as the device checks them."""
    if len(data) < 8 or data[:4] != MAGIC or data[4] != FORMAT_VERSION:
        raise BundleError("not a version-1 bundle")
    (count,) = struct.unpack_from("<H", data, 6)
    if count > MAX_FILES:
        raise BundleError(f"{count} files: at most {MAX_FILES}")
    pos = 8
    files: dict[str, bytes] = {}
    last = b""
    for _ in range(count):
        if pos + 6 > len(data):
            raise BundleError("bundle truncated")
        plen, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if not 0 < plen <= MAX_PATH or pos + plen + size > len(data):
            raise BundleError("bundle truncated or path too long")
        raw = data[pos : pos + plen]
        pos += plen
        try:
            path = raw.decode()
        except UnicodeDecodeError as e:
            raise BundleError("path is not UTF-8") from e
        check_path(path)
        if raw <= last:
            raise BundleError("paths not in strictly increasing order")
        last = raw
        files[path] = data[pos : pos + size]
        pos += size
    if pos != len(data):
        raise BundleError("bytes after the last file")
    return files
