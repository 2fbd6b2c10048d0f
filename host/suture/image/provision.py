"""The provisioning record stage0 reads its verification key from (``suture/counter.h``)."""

from __future__ import annotations

import struct
import zlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from suture.image.errors import ImageError
from suture.keys import PublicKey, public_key_bytes

PROVISION_MAGIC: Final = 0x59454B53  # "SKEY"
PROVISION_SIZE: Final = 80


def provision_record(public_key: PublicKey) -> bytes:
    """The 80-byte record: magic, alg 1 (ES256), x || y, reserved, CRC-32."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise ImageError("stage0 verifies ECDSA P-256 (ES256) only: use an ES256 key")
    point = public_key_bytes(public_key)[1:]  # drop the SEC1 0x04 prefix
    body = struct.pack("<II64sI", PROVISION_MAGIC, 1, point, 0)
    return body + struct.pack("<I", zlib.crc32(body))
