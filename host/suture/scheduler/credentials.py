"""Device credentials and request authentication (docs/formats/device-api.md).

Each device holds a 32-byte secret derived by the scheduler at provisioning::

    secret = HMAC-SHA256(root_secret, "suture-device-secret-v1" || 0x00 || device_id || 0x00
                                       || generation as 4 bytes big-endian)

The database stores no secret: only the generation (bumped to revoke a credential) and a
fingerprint (SHA-256 of the secret, hex) so operators can tell credentials apart. A stolen
database therefore lets nobody impersonate a device; the root secret lives in the settings.

Every device request carries four headers; the MAC is HMAC-SHA256 with the device secret over::

    "suture-device-v1\\n" METHOD "\\n" PATH "\\n" DEVICE-ID "\\n" TIME "\\n" COUNTER "\\n"
    hex(SHA-256(body))

``COUNTER`` must exceed every counter the scheduler accepted before from this device (replays
are refused); ``TIME`` must be within the allowed clock skew.

A device whose public key the scheduler registered at enrolment also **signs its reports** with
the key generated at provisioning (NVM record ``id.key``): ``Suture-Signature`` is ES256 (r || s,
128 hex digits) over SHA-256 of ``"suture-device-sig-v1\\n"`` followed by the same string to
sign. The MAC proves the secret, which a copy of the device's NVM store would also give; the
signature proves the private key, so a credential cloned onto another device without the key
is refused.

A device without a key pair MACs its SUIT reports (COSE_Mac0) under a key of their own,
derived from its secret with HKDF (``suit_report_key``, docs/formats/suit-report.md).

A request whose MAC verifies but whose time or counter is refused gets a **resync** with its
401: the scheduler's time and the last counter it accepted, MAC'd with the device secret over
the refused request's counter (``resync_headers``), so a device whose clock is wrong (no RTC,
a flat battery) or whose counter fell behind can correct itself and retry, and nobody else can
tell it a wrong time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from suture.formats.suit_report import MAC_KEY_INFO
from suture.scheduler.errors import AuthenticationError, InvalidInputError

SCHEME: Final = "suture-device-v1"
HEADER_DEVICE: Final = "Suture-Device"
HEADER_TIME: Final = "Suture-Time"
HEADER_COUNTER: Final = "Suture-Counter"
HEADER_MAC: Final = "Suture-MAC"
HEADER_SIGNATURE: Final = "Suture-Signature"
SIGNATURE_SCHEME: Final = "suture-device-sig-v1"
HEADER_SERVER_TIME: Final = "Suture-Server-Time"
HEADER_COUNTER_FLOOR: Final = "Suture-Counter-Floor"
HEADER_RESYNC_MAC: Final = "Suture-Resync-MAC"
RESYNC_SCHEME: Final = "suture-resync-v1"
MAX_COUNTER: Final = 2**63 - 1
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_MAC = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{128}$")
EMPTY_BODY_DIGEST: Final = hashlib.sha256(b"").hexdigest()


def derive_secret(root_secret: bytes, device_id: str, generation: int) -> bytes:
    label = b"suture-device-secret-v1\x00" + device_id.encode() + b"\x00"
    return hmac.new(root_secret, label + generation.to_bytes(4, "big"), hashlib.sha256).digest()


def suit_report_key(secret: bytes, device_id: str) -> bytes:
    """The key a device without a key pair MACs its SUIT reports with (COSE_Mac0, HMAC
    256/256): HKDF-SHA-256 of its secret, salt 32 zero bytes, info ``"suture-suit-report-mac-v1"
    || 0x00 || device_id``, 32 bytes (docs/formats/suit-report.md). A key of its own, so a
    report's MAC is never a request's MAC."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=bytes(32),
                info=MAC_KEY_INFO + b"\x00" + device_id.encode())
    return hkdf.derive(secret)


def fingerprint(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


def string_to_sign(method: str, path: str, device_id: str, time: int, counter: int,
                   body_digest_hex: str) -> bytes:
    return "\n".join(
        (SCHEME, method.upper(), path, device_id, str(time), str(counter), body_digest_hex)
    ).encode()


def signed_text(string_to_sign_bytes: bytes) -> bytes:
    """What the device key signs: the scheme line, then the MAC's string to sign."""
    return SIGNATURE_SCHEME.encode() + b"\n" + string_to_sign_bytes


def sign_request(secret: bytes, *, method: str, path: str, device_id: str, time: int,
                 counter: int, body: bytes = b"",
                 device_key: ec.EllipticCurvePrivateKey | None = None) -> dict[str, str]:
    """The headers a device sends (used by tests, the ward simulator and the benchmark); with
    ``device_key``, the ``Suture-Signature`` of a device with a registered key too."""
    sts = string_to_sign(method, path, device_id, time, counter, hashlib.sha256(body).hexdigest())
    mac = hmac.new(secret, sts, hashlib.sha256).hexdigest()
    headers = {HEADER_DEVICE: device_id, HEADER_TIME: str(time), HEADER_COUNTER: str(counter),
               HEADER_MAC: mac}
    if device_key is not None:
        r, s = decode_dss_signature(device_key.sign(signed_text(sts), ec.ECDSA(hashes.SHA256())))
        headers[HEADER_SIGNATURE] = (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()
    return headers


def public_point(text_hex: str) -> bytes:
    """A device public key given as 130 hex digits (the 65-byte uncompressed SEC1 point):
    checked to be a point of P-256 (InvalidInputError otherwise)."""
    try:
        point = bytes.fromhex(text_hex)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidInputError("a device public key is 130 hex digits: an uncompressed P-256 "
                                "point (04 || X || Y)") from None
    if len(point) != 65 or point[0] != 4:
        raise InvalidInputError("a device public key is an uncompressed P-256 point "
                                "(65 bytes, 04 || X || Y)")
    return point


def check_signature(public_key: bytes, req: SignedRequest, signature: str | None, *,
                    method: str, path: str, body_digest_hex: str) -> bool:
    """True when ``signature`` (128 hex digits, r || s) is the device key's ES256 signature of
    this request (``signed_text`` of its string to sign)."""
    if signature is None or not _SIGNATURE.match(signature):
        return False
    raw = bytes.fromhex(signature)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    sts = string_to_sign(method, path, req.device_id, req.time, req.counter, body_digest_hex)
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(encode_dss_signature(r, s), signed_text(sts), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        return False
    return True


def resync_headers(secret: bytes, *, device_id: str, request_counter: int, server_time: int,
                   counter_floor: int) -> dict[str, str]:
    """The headers of a resync: HMAC-SHA256 with the device secret over
    ``"suture-resync-v1\\n" DEVICE-ID "\\n" REQUEST-COUNTER "\\n" SERVER-TIME "\\n" FLOOR``."""
    text = "\n".join((RESYNC_SCHEME, device_id, str(request_counter), str(server_time),
                      str(counter_floor))).encode()
    return {HEADER_SERVER_TIME: str(server_time), HEADER_COUNTER_FLOOR: str(counter_floor),
            HEADER_RESYNC_MAC: hmac.new(secret, text, hashlib.sha256).hexdigest()}


@dataclass(frozen=True)
class SignedRequest:
    device_id: str
    time: int
    counter: int
    mac: str


def parse_headers(device: str | None, time: str | None, counter: str | None,
                  mac: str | None) -> SignedRequest:
    """Check the shape of the four headers (not the MAC)."""
    if device is None or time is None or counter is None or mac is None:
        raise AuthenticationError(
            f"device requests need the {HEADER_DEVICE}, {HEADER_TIME}, {HEADER_COUNTER} and "
            f"{HEADER_MAC} headers"
        )
    if not _DEVICE_ID.match(device):
        raise AuthenticationError(f"malformed {HEADER_DEVICE} header")
    if not _DIGITS.match(time):
        raise AuthenticationError(f"malformed {HEADER_TIME} header (unix seconds)")
    if not _DIGITS.match(counter) or not 0 < int(counter) <= MAX_COUNTER:
        raise AuthenticationError(f"malformed {HEADER_COUNTER} header (1..2^63-1)")
    if not _MAC.match(mac):
        raise AuthenticationError(f"malformed {HEADER_MAC} header (64 lower-case hex digits)")
    return SignedRequest(device, int(time), int(counter), mac)


def check_mac(secret: bytes, req: SignedRequest, *, method: str, path: str,
              body_digest_hex: str) -> bool:
    sts = string_to_sign(method, path, req.device_id, req.time, req.counter, body_digest_hex)
    expected = hmac.new(secret, sts, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, req.mac)
