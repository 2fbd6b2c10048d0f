# The loader image header (docs/formats/loader-image.md; stage0/include/suture/image.h), as the
# loader checks a staged loader release before it hands it to stage0: stage0 verifies the
# signature and the anti-rollback counter itself at the next boot; the loader makes sure the
# payload is a loader image for this board at all, so a wrong payload fails now, while the
# agent can still report it, instead of at a reset.
import struct

from micropython import const

from loader.errors import LoaderImageError

MAGIC = const(0x52444C53)  # "SLDR"
HEADER_SIZE = const(512)
_FMT = "<IHHBBHIIII"  # magic, header version, header size, major, minor, patch, counter,
#                       load address, image size, signature algorithm


class ImageHeader:
    def __init__(self, version, counter, load_address, image_size):
        self.version = version
        self.counter = counter
        self.load_address = load_address
        self.image_size = image_size


def parse(head):
    """The header fields of the first bytes of a loader image; LoaderImageError if not one."""
    if len(head) < 32:
        raise LoaderImageError("loader image shorter than its header")
    f = struct.unpack_from(_FMT, head, 0)
    if f[0] != MAGIC or f[1] != 1 or f[2] != HEADER_SIZE or f[9] != 1:
        raise LoaderImageError("not a loader image (magic, header version or algorithm)")
    return ImageHeader((f[3], f[4], f[5]), f[6], f[7], f[8])


def check(region, size, load_address):
    """The staged loader image in region (size bytes) is one for this board's loader slot."""
    head = bytearray(32)
    region.read(0, head)
    hdr = parse(head)
    if hdr.image_size + HEADER_SIZE != size:
        raise LoaderImageError("loader image size %d does not match the payload (%d)"
                               % (hdr.image_size + HEADER_SIZE, size))
    if load_address is not None and hdr.load_address != load_address:
        raise LoaderImageError("loader image is linked at 0x%x, this board's slot runs at 0x%x"
                               % (hdr.load_address, load_address))
    return hdr


def installed_is(region, size, digest, buf):
    """The loader slot (region) holds a loader image of size bytes (header and body) whose
    SHA-256 is digest: the source a loader-image delta names (docs/formats/delta.md). buf is a
    scratch buffer (the loader's sector buffer). False for a slot without a loader image."""
    import hashlib

    mv = memoryview(buf)
    if size < HEADER_SIZE or size > region.size:
        return False
    region.read(0, mv[:32])
    try:
        hdr = parse(mv[:32])
    except LoaderImageError:
        return False
    if hdr.image_size + HEADER_SIZE != size:
        return False
    h = hashlib.sha256()
    at = 0
    while at < size:
        n = size - at
        if n > len(buf):
            n = len(buf)
        region.read(at, mv[:n])
        h.update(mv[:n])
        at += n
    return h.digest() == digest
