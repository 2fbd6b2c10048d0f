"""The device's identity in its NVM store: the records provisioning writes and the device reads
(docs/formats/nvm.md, "Identity records"), defined once.

``tests/formats/test_identity_records.py`` checks this table both ways against the keys the
agent and the loader read (``device/agent``, ``loader/loader``) and against the doc's table, so a
record added, renamed or dropped on one side fails the build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from suture.formats.journal import FormatDescriptionError

SEC1_POINT_SIZE = 65  # uncompressed P-256 point: 0x04 || X || Y


class EnrolmentError(FormatDescriptionError):
    """Enrolment records that a device could not use (the formats family's error)."""


@dataclass(frozen=True)
class IdentityRecord:
    """One NVM record of the device's identity."""

    key: str
    meaning: str
    encoding: str
    reader: str  # the device code that reads it: "agent", "loader" or "" (kept for the host)


ID_DEVICE = "id.device"
ID_KEY = "id.key"
ID_SCHEDULER_URL = "id.scheduler"
ID_CREDENTIAL = "id.credential"
TRUST_VENDOR = "trust.vendor"
TRUST_SCHEDULER = "trust.scheduler"
NET_LINK = "net.link"
NET_CA = "net.ca"
MAX_CA_SIZE = 512  # an NVM record's largest value
DEV_TREE = "dev.tree"
ENC_KEYS = "enc.keys"
TRUST_HOSPITAL = "trust.hospital"  # present: a release is installed only under the hospital's
ENC_KIND_KEK = 1  # an AES key-encryption key (A128KW: 16 bytes, A256KW: 32 bytes)
ENC_KIND_ECDH = 2  # a P-256 private key for ECDH-ES+AES-KW (32 bytes big-endian)

RECORDS: tuple[IdentityRecord, ...] = (
    IdentityRecord(ID_DEVICE, "the device id the scheduler knows it by", "UTF-8 text", "agent"),
    IdentityRecord(ID_KEY, "the device's private key (it signs the agent's reports)",
                   "P-256 scalar, 32 bytes big-endian", "agent"),
    IdentityRecord(ID_SCHEDULER_URL, "the scheduler's base URL", "UTF-8 text", "agent"),
    IdentityRecord(ID_CREDENTIAL, "the device secret the scheduler issued", "32 bytes",
                   "agent"),
    IdentityRecord(TRUST_VENDOR, "the vendor's SUIT signing keys",
                   "65-byte SEC1 points, concatenated (a rotation: trust-store.md)", "loader"),
    IdentityRecord(TRUST_SCHEDULER, "the scheduler's schedule-signing keys",
                   "65-byte SEC1 points, concatenated (a rotation: trust-store.md)", "loader"),
    IdentityRecord(NET_LINK, "the agent's transport",
                   'UTF-8: "http", "qemu", "tty:PATH" or "uart:ID:BAUD"', "agent"),
    IdentityRecord(NET_CA, "the CA the scheduler's TLS certificate must chain to (https URLs)",
                   "DER X.509 certificate, at most 512 bytes", "agent"),
    IdentityRecord(DEV_TREE, "the application tree a developer deployed (kept across reverts)",
                   "SHA-256 of the tree (32 bytes)", "loader"),
    IdentityRecord(ENC_KEYS, "the keys that open encrypted payloads (per device or group)",
                   "entries: kind (1: AES KEK, 2: P-256 scalar), kid length, kid, key length, "
                   "key (1-byte lengths)", "loader"),
    IdentityRecord(TRUST_HOSPITAL, "present: every release must come under the hospital's "
                   "manifest (suit-extensions.md)", "1 byte: 1", "loader"),
)


def enrolment(*, device_id: str, credential: bytes, scheduler_url: str,
              scheduler_keys: Sequence[bytes], link: str | None = None,
              tls_ca: bytes | None = None) -> dict[str, bytes]:
    """The records that enrol a device with a scheduler: its id, its credential, where to poll
    and whose schedules to trust (and, when given, its transport and the CA its https
    scheduler's certificate must chain to, DER)."""
    if scheduler_url.startswith("https://") and tls_ca is None:
        raise EnrolmentError("an https scheduler URL needs the CA its certificate chains to "
                             "(the device pins it)")
    if tls_ca is not None and not (0 < len(tls_ca) <= MAX_CA_SIZE and tls_ca[0] == 0x30):
        raise EnrolmentError(f"the TLS CA is one DER certificate of at most {MAX_CA_SIZE} "
                             "bytes (an EC P-256 CA fits)")
    if not scheduler_keys:
        raise EnrolmentError("a device needs at least one scheduler key to trust")
    for point in scheduler_keys:
        if len(point) != SEC1_POINT_SIZE or point[0] != 4:
            raise EnrolmentError("a scheduler key is a 65-byte uncompressed SEC1 point")
    records = {
        ID_DEVICE: device_id.encode(),
        ID_CREDENTIAL: credential,
        ID_SCHEDULER_URL: scheduler_url.encode(),
        TRUST_SCHEDULER: b"".join(scheduler_keys),
    }
    if link is not None:
        records[NET_LINK] = link.encode()
    if tls_ca is not None:
        records[NET_CA] = tls_ca
    return records


def encryption_keys(entries: Sequence[tuple[int, bytes, bytes]]) -> bytes:
    """The ``enc.keys`` record of ``entries`` (kind, kid, key): AES key-encryption keys
    (:data:`ENC_KIND_KEK`, 16 or 32 bytes) and P-256 private keys (:data:`ENC_KIND_ECDH`, the
    32-byte big-endian scalar). A rotation writes the record again with the new key first and
    the old one kept until every release encrypted for it is installed."""
    out = bytearray()
    for kind, kid, key in entries:
        if kind == ENC_KIND_KEK and len(key) not in (16, 32):
            raise EnrolmentError("a key-encryption key is 16 (A128KW) or 32 (A256KW) bytes")
        if kind == ENC_KIND_ECDH and len(key) != 32:
            raise EnrolmentError("a P-256 decryption key is its 32-byte scalar")
        if kind not in (ENC_KIND_KEK, ENC_KIND_ECDH):
            raise EnrolmentError(f"decryption key kind {kind}: 1 (AES KEK) or 2 (P-256)")
        if len(kid) > 255:
            raise EnrolmentError("a key id is at most 255 bytes")
        out += bytes((kind, len(kid))) + kid + bytes((len(key),)) + key
    if len(out) > MAX_CA_SIZE:
        raise EnrolmentError(f"the decryption keys take {len(out)} bytes; an NVM record holds "
                             f"{MAX_CA_SIZE}")
    return bytes(out)
