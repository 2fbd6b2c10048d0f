# The record of what is installed in littlefs: `<mount>/.installed`, replaced atomically (write a
# temporary file, then rename over it). Layout: magic "SUTI", version u32, size u32, SHA-256 of
# the canonical bundle of <mount>/app, CRC-32 of the preceding bytes.
import os
import struct
from binascii import crc32

_FMT = "<4sII32s"
_MAGIC = b"SUTI"


class Installed:
    def __init__(self, version=0, size=0, digest=bytes(32)):
        self.version = version
        self.size = size
        self.digest = digest


def read(path):
    try:
        with open(path, "rb") as f:
            data = f.read(48)
    except OSError:
        return Installed()
    if len(data) != 48 or struct.unpack_from("<I", data, 44)[0] != crc32(data[:44]):
        return Installed()
    magic, version, size, digest = struct.unpack_from(_FMT, data, 0)
    if magic != _MAGIC:
        return Installed()
    return Installed(version, size, bytes(digest))


def write(path, inst):
    body = struct.pack(_FMT, _MAGIC, inst.version, inst.size, inst.digest)
    tmp = path + "~new"
    with open(tmp, "wb") as f:
        f.write(body)
        f.write(struct.pack("<I", crc32(body)))
    os.rename(tmp, path)
