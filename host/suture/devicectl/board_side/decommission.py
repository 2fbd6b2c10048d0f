# Decommissioning: erase the application filesystem (every file, then its free space overwritten
# so deleted data cannot be read back from the flash) and the external flash regions that hold the
# device data (journal, NVM with the identity, staging and backup slots), then read everything
# back: each region's SHA-256 and the count of its sectors that are not all 0xFF, and the files
# left in the filesystem.
import binascii
import hashlib
import os

from loader import api
from loader.hal import board

REGIONS = ("journal", "nvm", "staging", "backup")
_FILL = "/.scrub"
_COMMITS = 64


def _walk(path, files, dirs):
    for entry in os.ilistdir(path):
        full = path + "/" + entry[0]
        if entry[1] & 0x4000:
            _walk(full, files, dirs)
            dirs.append(full)
        else:
            files.append(full)


def _files():
    files = []
    _walk(board().mount_point, files, [])
    return [[f, os.stat(f)[6]] for f in files]


def fs_files():
    """Every file under the filesystem's mount point, with its size."""
    return {"files": _files()}


def _scrub(root, buf):
    """Overwrite what deleted files leave in the flash: littlefs keeps small files inline in
    their directory's metadata blocks until the pair is compacted, so an empty file is created
    and removed until both blocks of the root's pair have been rewritten; then the free blocks
    are overwritten by one file grown until the filesystem is full, and removed. The bytes
    written by the second step."""
    path = root + _FILL
    for _ in range(_COMMITS):
        open(path, "wb").close()
        os.remove(path)
    n = 0
    try:
        with open(path, "wb") as f:
            while True:
                try:
                    f.write(buf)
                except OSError:
                    break
                n += len(buf)
    except OSError:
        pass
    try:
        os.remove(path)
    except OSError:
        pass
    return n


def _region_report(region, buf, ff):
    h = hashlib.sha256()
    dirty = 0
    mv = memoryview(buf)
    addr = 0
    while addr < region.size:
        k = len(buf) if region.size - addr > len(buf) else region.size - addr
        region.read(addr, mv[:k])
        h.update(mv[:k])
        if (buf != ff) if k == len(buf) else (bytes(mv[:k]) != ff[:k]):
            dirty += 1
        addr += k
    return [region.name, region.offset, region.size, binascii.hexlify(h.digest()).decode(), dirty]


def decommission():
    """Erase the device data and read it back (see the module's comment)."""
    b = board()
    ld = api.loader()
    root = b.mount_point
    files = []
    dirs = []
    _walk(root, files, dirs)
    removed = 0
    for f in files:
        removed += os.stat(f)[6]
        os.remove(f)
    for d in dirs:
        os.rmdir(d)
    buf = bytearray(b"\xff" * 4096)
    scrubbed = _scrub(root, buf)
    ff = bytes(buf)
    regions = []
    for name in REGIONS:
        region = b.region(name)
        region.erase_range(0, region.size)
        regions.append(_region_report(region, buf, ff))
    ld.journal.scan()
    return {
        "regions": regions,
        "fs_files_removed": len(files),
        "fs_bytes_removed": removed,
        "fs_bytes_scrubbed": scrubbed,
        "fs_files_left": _files(),
        "installed_version": ld.installed().version,
    }
