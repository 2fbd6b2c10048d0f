"""The schedule document (docs/formats/schedule.md): a tagged COSE_Sign1 (ES256, P-256) whose
payload is a CBOR map with small integer keys. This module is the one definition of those keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from suture import cose
from suture.keys import PrivateKey, PublicKey, cose_algorithm, key_id

FORMAT_VERSION: Final = 1

K_FORMAT: Final = 1
K_DEVICE_ID: Final = 2
K_SCHEDULE_NUMBER: Final = 3
K_ISSUED_AT: Final = 4
K_ACTION: Final = 5
K_ROLLOUT_ID: Final = 6
K_ENVELOPE_URI: Final = 7
K_ENVELOPE_DIGEST: Final = 8
K_ENVELOPE_SIZE: Final = 9
K_PAYLOAD_URI: Final = 10
K_PAYLOAD_SIZE: Final = 11
K_PAYLOAD_DIGEST: Final = 12
K_NOT_BEFORE: Final = 13
K_NOT_AFTER: Final = 14
K_NEXT_POLL: Final = 15
K_POLL_INTERVAL: Final = 16
K_COMPONENT: Final = 17
K_SEQUENCE_NUMBER: Final = 18
K_FORCED: Final = 19
K_RELEASE_ID: Final = 20
K_GRANT: Final = 21  # the vendor's grant for the rollout (a map, GRANT_* keys below)
K_TRUST_UPDATE: Final = 22  # a signed trust-store update (docs/formats/trust-store.md)

MAX_DOCUMENT_BYTES: Final = 2048

# Keys of the grant map (key 21).
GRANT_REFERENCE: Final = 1  # tstr: the GNAP grant that allows the rollout (its continuation URI)
GRANT_BISCUIT: Final = 2  # tstr: a biscuit (base64url) for the vendor's /direct/ downloads


@dataclass(frozen=True)
class Grant:
    """The vendor's authorization of this installation (key 21): the rollout's GNAP grant,
    and, when the device downloads directly from the vendor (keys 7 and 10 then name the
    vendor's ``/direct/`` path), the biscuit it presents there."""

    reference: str
    biscuit: str | None = None

    def to_map(self) -> dict[int, str]:
        m = {GRANT_REFERENCE: self.reference}
        if self.biscuit is not None:
            m[GRANT_BISCUIT] = self.biscuit
        return m

    @classmethod
    def from_map(cls, m: Any) -> Grant:
        """The grant of a decoded document; raises ``ValueError`` when it is malformed."""
        if not isinstance(m, dict) or not isinstance(m.get(GRANT_REFERENCE), str) \
                or not m[GRANT_REFERENCE]:
            raise ValueError("key 21 must be a map with a grant reference (1)")
        biscuit = m.get(GRANT_BISCUIT)
        if biscuit is not None and (not isinstance(biscuit, str) or not biscuit):
            raise ValueError("the grant's biscuit (21/2) must be a text string")
        return cls(m[GRANT_REFERENCE], biscuit)


@dataclass(frozen=True)
class Artifact:
    """What the device fetches and installs for one step."""

    release_id: int
    component: str
    sequence_number: int
    envelope_uri: str
    envelope_digest: bytes
    envelope_size: int
    payload_uri: str
    payload_digest: bytes
    payload_size: int


@dataclass(frozen=True)
class Schedule:
    device_id: str
    number: int
    issued_at: int
    action: int
    next_poll: int
    poll_interval: int
    rollout_id: int | None = None
    artifact: Artifact | None = None
    not_before: int | None = None
    not_after: int | None = None
    forced: bool = False
    grant: Grant | None = field(default=None)
    trust_update: bytes | None = None

    def to_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {
            K_FORMAT: FORMAT_VERSION,
            K_DEVICE_ID: self.device_id,
            K_SCHEDULE_NUMBER: self.number,
            K_ISSUED_AT: self.issued_at,
            K_ACTION: self.action,
            K_NEXT_POLL: self.next_poll,
            K_POLL_INTERVAL: self.poll_interval,
        }
        if self.rollout_id is not None:
            m[K_ROLLOUT_ID] = self.rollout_id
        if self.artifact is not None:
            a = self.artifact
            m.update({
                K_RELEASE_ID: a.release_id,
                K_COMPONENT: a.component,
                K_SEQUENCE_NUMBER: a.sequence_number,
                K_ENVELOPE_URI: a.envelope_uri,
                K_ENVELOPE_DIGEST: a.envelope_digest,
                K_ENVELOPE_SIZE: a.envelope_size,
                K_PAYLOAD_URI: a.payload_uri,
                K_PAYLOAD_DIGEST: a.payload_digest,
                K_PAYLOAD_SIZE: a.payload_size,
            })
        if self.not_before is not None and self.not_after is not None:
            m[K_NOT_BEFORE] = self.not_before
            m[K_NOT_AFTER] = self.not_after
        if self.forced:
            m[K_FORCED] = True
        if self.grant is not None:
            m[K_GRANT] = self.grant.to_map()
        if self.trust_update is not None:
            m[K_TRUST_UPDATE] = self.trust_update
        return m


def sign_schedule(schedule: Schedule, key: PrivateKey) -> bytes:
    """The signed document: tagged COSE_Sign1, ES256, kid = the scheduler key id."""
    if cose_algorithm(key) != cose.ES256:
        raise ValueError("the scheduler key must be an ES256 (P-256) key: devices verify ES256")
    payload = cbor2.dumps(schedule.to_map(), canonical=True)
    return cose.sign1(payload, key, kid=key_id(key.public_key()), tagged=True)


def verify_schedule(document: bytes, keys: PublicKey | Sequence[PublicKey]) -> Mapping[int, Any]:
    """Verify and decode (what the device does); raises ``cose.CoseError``."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise cose.CoseError("schedule document too large")
    payload = cose.verify1(document, keys)
    decoded = cbor2.loads(payload)
    if not isinstance(decoded, dict) or decoded.get(K_FORMAT) != FORMAT_VERSION:
        raise cose.CoseError("not a schedule document of format 1")
    return decoded
