"""The trust-store update (docs/formats/trust-store.md): a tagged COSE_Sign1 (ES256) whose payload
names a role ("vendor" or "scheduler"), a version and the role's new keys, signed by a key the
device trusts for that role now. This module is the one definition of its keys and limits; the
loader's copy (``loader/loader/trust.py``) is checked against it by
``tests/formats/test_trust_store_copies.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from suture import cose
from suture.formats.identity import SEC1_POINT_SIZE, TRUST_SCHEDULER, TRUST_VENDOR
from suture.formats.journal import FormatDescriptionError
from suture.keys import PrivateKey, PublicKey, cose_algorithm, key_id

FORMAT: Final = 1
K_FORMAT: Final = 1
K_ROLE: Final = 2
K_VERSION: Final = 3
K_KEYS: Final = 4

MAX_DOCUMENT: Final = 1024
MAX_KEYS: Final = 7  # 4 + 7 * 65 bytes fit in one NVM record (512 bytes)
MAX_VERSION: Final = 0xFFFFFFFF
# The NVM record of a role: schema 1 (provisioned) holds the points alone; schema 2 (written by
# an update) holds the version (u32, big-endian) and then the points.
SCHEMA_PROVISIONED: Final = 1
SCHEMA_VERSIONED: Final = 2
ROLES: Final = {"vendor": TRUST_VENDOR, "scheduler": TRUST_SCHEDULER}


class TrustStoreError(FormatDescriptionError):
    """A trust-store update that cannot be made or does not verify."""


@dataclass(frozen=True)
class TrustUpdate:
    """The new anchors of one role: at least one 65-byte SEC1 point, and a version above the
    device's current one for that role."""

    role: str
    version: int
    keys: tuple[bytes, ...]

    def to_map(self) -> dict[int, Any]:
        if self.role not in ROLES:
            raise TrustStoreError(f"unknown role {self.role!r}: one of {sorted(ROLES)}")
        if not 1 <= self.version <= MAX_VERSION:
            raise TrustStoreError("the version is an integer in 1..2^32-1")
        if not 1 <= len(self.keys) <= MAX_KEYS:
            raise TrustStoreError(f"a trust-store update names 1..{MAX_KEYS} keys")
        for point in self.keys:
            point_key(point)
        return {K_FORMAT: FORMAT, K_ROLE: self.role, K_VERSION: self.version,
                K_KEYS: list(self.keys)}


def sec1_point(key: PublicKey | PrivateKey) -> bytes:
    """The 65-byte uncompressed SEC1 point of a P-256 key."""
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP256R1):
        raise TrustStoreError("trust anchors are P-256 keys")
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def point_key(point: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a 65-byte SEC1 point; TrustStoreError when it is not one."""
    if len(point) != SEC1_POINT_SIZE or point[0] != 4:
        raise TrustStoreError("a key is a 65-byte uncompressed SEC1 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as e:
        raise TrustStoreError(f"a key is not a point of P-256: {e}") from e


def sign_trust_update(update: TrustUpdate, key: PrivateKey) -> bytes:
    """The signed document, with the signer's key id in the unprotected header. key is one the
    devices trust for update.role now (the old anchor)."""
    if cose_algorithm(key) != cose.ES256:
        raise TrustStoreError("a trust-store update is signed with ES256 (a P-256 key)")
    payload = cbor2.dumps(update.to_map(), canonical=True)
    doc = cose.sign1(payload, key, kid=key_id(key.public_key()), tagged=True)
    if len(doc) > MAX_DOCUMENT:
        raise TrustStoreError(f"the document is over {MAX_DOCUMENT} bytes")
    return doc


def verify_trust_update(document: bytes, trusted: Sequence[bytes]) -> TrustUpdate:
    """What the device checks, minus the version against its own: the signature by one of
    trusted (65-byte points) and the payload's shape."""
    if len(document) > MAX_DOCUMENT:
        raise TrustStoreError(f"the document is over {MAX_DOCUMENT} bytes")
    try:
        payload = cose.verify1(document, [point_key(p) for p in trusted])
    except cose.CoseError as e:
        raise TrustStoreError(f"the trust-store update does not verify: {e}") from e
    m = cbor2.loads(payload)
    if not isinstance(m, dict) or m.get(K_FORMAT) != FORMAT:
        raise TrustStoreError("not a trust-store update of format 1")
    keys = m.get(K_KEYS)
    version = m.get(K_VERSION)
    role = m.get(K_ROLE)
    if not isinstance(keys, list) or not all(isinstance(k, bytes) for k in keys) \
            or not isinstance(version, int) or not isinstance(role, str):
        raise TrustStoreError("a trust-store update's keys, version or role has the wrong type")
    update = TrustUpdate(role, version, tuple(keys))
    update.to_map()
    return update
