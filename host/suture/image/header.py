"""The loader image header (512 bytes, little-endian), as ``stage0/include/suture/image.h``."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from suture.image.errors import ImageError

IMAGE_MAGIC: Final = 0x52444C53  # "SLDR"
HEADER_VERSION: Final = 1
HEADER_SIZE: Final = 512
SIGNED_SIZE: Final = 448
SIG_ALG_ES256: Final = 1
# magic, header_version, header_size, major, minor, patch, security_counter, load_address,
# image_size, sig_alg, key_id[8], digest[32]
_FIELDS: Final = struct.Struct("<IHHBBHIIII8s32s")
_RESERVED: Final = SIGNED_SIZE - _FIELDS.size
MAX_U32: Final = 0xFFFFFFFF


class ImageFormatError(ImageError):
    """The bytes are not a loader image: too short, wrong magic, version or sizes."""


@dataclass(frozen=True)
class LoaderImageHeader:
    """The fields of a loader image header."""

    version: tuple[int, int, int]
    security_counter: int
    load_address: int
    image_size: int
    key_id: bytes
    digest: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """Bytes 0..447: what the signature covers."""
        major, minor, patch = self.version
        if not (0 <= major <= 255 and 0 <= minor <= 255 and 0 <= patch <= 0xFFFF):
            raise ImageFormatError(f"version {major}.{minor}.{patch} out of range (u8.u8.u16)")
        for name, value in (
            ("security counter", self.security_counter),
            ("load address", self.load_address),
            ("image size", self.image_size),
        ):
            if not 0 <= value <= MAX_U32:
                raise ImageFormatError(f"{name} {value} does not fit in 32 bits")
        if len(self.key_id) != 8 or len(self.digest) != 32:
            raise ImageFormatError("key id must be 8 bytes and digest 32 bytes")
        fields = _FIELDS.pack(
            IMAGE_MAGIC,
            HEADER_VERSION,
            HEADER_SIZE,
            major,
            minor,
            patch,
            self.security_counter,
            self.load_address,
            self.image_size,
            SIG_ALG_ES256,
            self.key_id,
            self.digest,
        )
        return fields + bytes(_RESERVED)

    def to_bytes(self) -> bytes:
        """The whole 512-byte header (the signature must be set)."""
        if len(self.signature) != HEADER_SIZE - SIGNED_SIZE:
            raise ImageFormatError("signature must be 64 bytes (r || s)")
        return self.signed_bytes() + self.signature


def parse_header(data: bytes) -> LoaderImageHeader:
    """Parse the header at the start of ``data``; :class:`ImageFormatError` when it is not one."""
    if len(data) < HEADER_SIZE:
        raise ImageFormatError(f"{len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    (magic, hver, hsize, major, minor, patch, counter, load, size, alg, kid, digest) = (
        _FIELDS.unpack_from(data)
    )
    if magic != IMAGE_MAGIC:
        raise ImageFormatError(f"bad magic 0x{magic:08x} (expected 0x{IMAGE_MAGIC:08x}, 'SLDR')")
    if hver != HEADER_VERSION or hsize != HEADER_SIZE:
        raise ImageFormatError(f"unsupported header version {hver} / size {hsize}")
    if alg != SIG_ALG_ES256:
        raise ImageFormatError(f"unsupported signature algorithm {alg}")
    if any(data[_FIELDS.size : SIGNED_SIZE]):
        raise ImageFormatError("reserved header bytes are not zero")
    return LoaderImageHeader(
        version=(major, minor, patch),
        security_counter=counter,
        load_address=load,
        image_size=size,
        key_id=kid,
        digest=digest,
        signature=bytes(data[SIGNED_SIZE:HEADER_SIZE]),
    )
