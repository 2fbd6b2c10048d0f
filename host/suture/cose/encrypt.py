"""COSE_Encrypt (RFC 9052 section 5.1) with a detached ciphertext, as SUIT_Encryption_Info
(draft-ietf-suit-firmware-encryption) uses it: encrypt and decrypt.

Content encryption (layer 0):

- A128GCM (1), A192GCM (2), A256GCM (3): AEAD; the algorithm is in the protected header, the
  additional data is ``Enc_structure = ["Encrypt", protected, external_aad]``; 12-byte IV; the
  ciphertext ends with the 16-byte tag.
- A128CTR (-65534), A192CTR (-65533), A256CTR (-65532) (RFC 9459): no integrity, so the
  protected header must be empty (the algorithm is unprotected) and a digest in the signed
  manifest must cover the payload; 16-byte IV, the initial counter block, incremented as one
  128-bit big-endian integer per block.

Content key distribution (layer 1, one COSE_recipient per device or group):

- A128KW (-3), A192KW (-4), A256KW (-5) (RFC 3394): the CEK wrapped with a pre-shared
  key-encryption key; the recipient's protected header is empty.
- ECDH-ES+A128KW (-29), ECDH-ES+A192KW (-30), ECDH-ES+A256KW (-31) on P-256: an ephemeral key
  (unprotected label -1), ECDH with the recipient's static key, HKDF-SHA-256 over the draft's
  ``COSE_KDF_Context = [kw-alg, [nil, nil, nil], [nil, nil, nil], [key-bits, protected,
  'SUIT Payload Encryption']]`` gives the key-encryption key that wraps the CEK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from suture.cose import CoseError
from suture.cose.cbor import describe
from suture.cose.headers import (
    HEADER_ALG,
    HEADER_EPHEMERAL_KEY,
    HEADER_IV,
    HEADER_KID,
    HEADER_PARTIAL_IV,
    Headers,
    decode_headers,
)
from suture.cose.mac0 import SymmetricKey
from suture.cose.message import decode_message

COSE_ENCRYPT_TAG: Final = 96

A128GCM: Final = 1
A192GCM: Final = 2
A256GCM: Final = 3
A128CTR: Final = -65534
A192CTR: Final = -65533
A256CTR: Final = -65532
A128KW: Final = -3
A192KW: Final = -4
A256KW: Final = -5
ECDH_ES_A128KW: Final = -29
ECDH_ES_A192KW: Final = -30
ECDH_ES_A256KW: Final = -31

HEADER_SALT: Final = -20
KDF_OTHER: Final = b"SUIT Payload Encryption"
GCM_TAG_BYTES: Final = 16
MAX_RECIPIENTS: Final = 256
MAX_ENCRYPT_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 8

# COSE_Key labels (RFC 9052 section 7, RFC 9053 section 7.1)
_KTY: Final = 1
_KTY_EC2: Final = 2
_CRV: Final = -1
_CRV_P256: Final = 1
_X: Final = -2
_Y: Final = -3


@dataclass(frozen=True)
class ContentAlgorithm:
    name: str
    key_bytes: int
    iv_bytes: int
    aead: bool


CONTENT_ALGS: Final = {
    A128GCM: ContentAlgorithm("A128GCM", 16, 12, True),
    A192GCM: ContentAlgorithm("A192GCM", 24, 12, True),
    A256GCM: ContentAlgorithm("A256GCM", 32, 12, True),
    A128CTR: ContentAlgorithm("A128CTR", 16, 16, False),
    A192CTR: ContentAlgorithm("A192CTR", 24, 16, False),
    A256CTR: ContentAlgorithm("A256CTR", 32, 16, False),
}
KW_ALGS: Final = {A128KW: ("A128KW", 16), A192KW: ("A192KW", 24), A256KW: ("A256KW", 32)}
ECDH_ALGS: Final = {
    ECDH_ES_A128KW: ("ECDH-ES+A128KW", A128KW),
    ECDH_ES_A192KW: ("ECDH-ES+A192KW", A192KW),
    ECDH_ES_A256KW: ("ECDH-ES+A256KW", A256KW),
}
KW_BY_KEY_BYTES: Final = {16: A128KW, 24: A192KW, 32: A256KW}
ECDH_BY_KW: Final = {kw: alg for alg, (_, kw) in ECDH_ALGS.items()}


def encryption_alg_name(alg: object) -> str:
    """``A128GCM``, ``ECDH-ES+A128KW``... for a COSE algorithm id; ``alg N`` for others."""
    if isinstance(alg, int) and not isinstance(alg, bool):
        if alg in CONTENT_ALGS:
            return CONTENT_ALGS[alg].name
        if alg in KW_ALGS:
            return KW_ALGS[alg][0]
        if alg in ECDH_ALGS:
            return ECDH_ALGS[alg][0]
    return f"alg {alg!r}"


@dataclass(frozen=True)
class EcdhRecipientKey:
    """A device's (or group's) static P-256 public key, to encrypt for with ECDH-ES+AES-KW."""

    public_key: ec.EllipticCurvePublicKey
    kid: bytes | None = None


@dataclass(frozen=True)
class EcdhPrivateKey:
    """A recipient's static P-256 private key, to decrypt with."""

    private_key: ec.EllipticCurvePrivateKey
    kid: bytes | None = None


RecipientKey = SymmetricKey | EcdhRecipientKey
DecryptionKey = SymmetricKey | EcdhPrivateKey


@dataclass(frozen=True)
class Recipient:
    """One decoded COSE_recipient: how the CEK is wrapped for one key."""

    alg: int
    kid: bytes | None
    protected_bytes: bytes
    encrypted_key: bytes
    ephemeral_key: ec.EllipticCurvePublicKey | None
    salt: bytes | None

    @property
    def alg_name(self) -> str:
        return encryption_alg_name(self.alg)


@dataclass(frozen=True)
class EncryptInfo:
    """A decoded COSE_Encrypt whose ciphertext is detached (SUIT_Encryption_Info)."""

    protected_bytes: bytes
    content_alg: int
    iv: bytes
    recipients: tuple[Recipient, ...]
    encoded: bytes

    @property
    def content_alg_name(self) -> str:
        return encryption_alg_name(self.content_alg)

    @property
    def aead(self) -> bool:
        return CONTENT_ALGS[self.content_alg].aead


def enc_structure(protected_bytes: bytes, external_aad: bytes = b"") -> bytes:
    """The additional data of an AEAD content layer: ``["Encrypt", protected, external_aad]``."""
    return cbor2.dumps(["Encrypt", protected_bytes, external_aad])


def kdf_context(kw_alg: int, recipient_protected: bytes) -> bytes:
    """The draft's COSE_KDF_Context for ECDH-ES+AES-KW (identities empty)."""
    bits = KW_ALGS[kw_alg][1] * 8
    return cbor2.dumps(
        [kw_alg, [None, None, None], [None, None, None], [bits, recipient_protected, KDF_OTHER]]
    )


def _derive_kek(
    shared_secret: bytes, kw_alg: int, recipient_protected: bytes, salt: bytes | None
) -> bytes:
    return HKDF(
        hashes.SHA256(), KW_ALGS[kw_alg][1], salt, kdf_context(kw_alg, recipient_protected)
    ).derive(shared_secret)


def _cose_key_p256(value: object, where: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(value, Mapping):
        raise CoseError(f"{where}: expected a COSE_Key map, got {describe(value)}")
    if value.get(_KTY) != _KTY_EC2 or value.get(_CRV) != _CRV_P256:
        raise CoseError(f"{where}: only EC2 keys on P-256 (kty 2, crv 1) are supported")
    x, y = value.get(_X), value.get(_Y)
    if not isinstance(x, bytes) or not isinstance(y, bytes) or len(x) != 32 or len(y) != 32:
        raise CoseError(f"{where}: x and y must be 32-byte bstr coordinates")
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError:
        raise CoseError(f"{where}: the point is not on P-256") from None


def cose_key_p256(key: ec.EllipticCurvePublicKey) -> dict[int, Any]:
    """A P-256 public key as a COSE_Key map (kty EC2, crv P-256, x, y)."""
    numbers = key.public_numbers()
    return {
        _KTY: _KTY_EC2,
        _CRV: _CRV_P256,
        _X: numbers.x.to_bytes(32, "big"),
        _Y: numbers.y.to_bytes(32, "big"),
    }


def _decode_recipient(value: object, where: str) -> Recipient:
    if not isinstance(value, list | tuple):
        raise CoseError(f"{where}: expected a COSE_recipient array, got {describe(value)}")
    if len(value) != 3:
        raise CoseError(
            f"{where}: a COSE_recipient of {len(value)} elements; only 3 (no nested "
            "recipients) is supported"
        )
    protected, unprotected, encrypted_key = value
    alg_protected = isinstance(protected, bytes) and len(protected) > 0
    headers = decode_headers(
        where, protected, unprotected,
        understood=(HEADER_EPHEMERAL_KEY, HEADER_SALT), alg_protected=alg_protected,
    )
    alg = headers.alg
    if alg is None:
        raise CoseError(f"{where}: no algorithm (label 1)")
    if not isinstance(encrypted_key, bytes):
        raise CoseError(f"{where} ciphertext: expected bstr, got {describe(encrypted_key)}")
    ephemeral = None
    salt = None
    if alg in KW_ALGS:
        if headers.protected_bytes:
            raise CoseError(f"{where}: an {encryption_alg_name(alg)} recipient's protected "
                            "header must be empty")
    elif alg in ECDH_ALGS:
        if HEADER_EPHEMERAL_KEY not in headers.unprotected:
            raise CoseError(f"{where}: ECDH-ES needs the ephemeral key (label -1)")
        ephemeral = _cose_key_p256(headers.unprotected[HEADER_EPHEMERAL_KEY],
                                   f"{where} ephemeral key")
        raw_salt = headers.get(HEADER_SALT)
        if raw_salt is not None and not isinstance(raw_salt, bytes):
            raise CoseError(f"{where} salt (label -20): expected bstr")
        salt = raw_salt
    else:
        raise CoseError(f"{where}: key distribution {encryption_alg_name(alg)} is not supported "
                        "(A128KW/A192KW/A256KW, ECDH-ES+A128KW/A192KW/A256KW)")
    if len(encrypted_key) < 24 or len(encrypted_key) % 8:
        raise CoseError(f"{where} ciphertext: a wrapped key of {len(encrypted_key)} bytes")
    return Recipient(
        alg=alg,
        kid=headers.kid,
        protected_bytes=headers.protected_bytes,
        encrypted_key=encrypted_key,
        ephemeral_key=ephemeral,
        salt=salt,
    )


def decode_encrypt(data: bytes) -> EncryptInfo:
    """Decode a COSE_Encrypt (tag 96) with a detached (nil) ciphertext; checks structure and
    algorithms, not keys."""
    body, _ = decode_message("COSE_Encrypt", data, tag=COSE_ENCRYPT_TAG, entries=4,
                             max_bytes=MAX_ENCRYPT_BYTES, max_depth=MAX_DEPTH, tag_required=True)
    protected, unprotected, ciphertext, recipients = body
    headers: Headers = decode_headers(
        "COSE_Encrypt", protected, unprotected, understood=(), alg_protected=bool(protected)
    )
    alg = headers.alg
    if alg is None:
        raise CoseError("COSE_Encrypt: no content encryption algorithm (label 1)")
    if alg not in CONTENT_ALGS:
        raise CoseError(f"COSE_Encrypt: content encryption {encryption_alg_name(alg)} is not "
                        "supported (A128/192/256GCM, A128/192/256CTR)")
    spec = CONTENT_ALGS[alg]
    if not spec.aead and headers.protected_bytes:
        raise CoseError(f"COSE_Encrypt: {spec.name} has no integrity; its protected header must "
                        "be empty (RFC 9459)")
    if spec.aead and HEADER_ALG not in headers.protected:
        raise CoseError(f"COSE_Encrypt: {spec.name} must be named in the protected header")
    if HEADER_PARTIAL_IV in headers.unprotected or HEADER_PARTIAL_IV in headers.protected:
        raise CoseError("COSE_Encrypt: a partial IV (label 6) is not supported")
    iv = headers.get(HEADER_IV)
    if not isinstance(iv, bytes) or len(iv) != spec.iv_bytes:
        size = len(iv) if isinstance(iv, bytes) else describe(iv)
        raise CoseError(f"COSE_Encrypt: {spec.name} needs a {spec.iv_bytes}-byte IV (label 5), "
                        f"got {size}")
    if ciphertext is not None:
        raise CoseError("COSE_Encrypt: the ciphertext must be detached (nil) in "
                        "SUIT_Encryption_Info")
    if not isinstance(recipients, list | tuple) or not recipients:
        raise CoseError("COSE_Encrypt recipients: expected a non-empty array")
    if len(recipients) > MAX_RECIPIENTS:
        raise CoseError(f"COSE_Encrypt: {len(recipients)} recipients, the limit is "
                        f"{MAX_RECIPIENTS}")
    decoded = tuple(
        _decode_recipient(r, f"COSE_Encrypt recipient {i}") for i, r in enumerate(recipients)
    )
    return EncryptInfo(
        protected_bytes=headers.protected_bytes,
        content_alg=alg,
        iv=iv,
        recipients=decoded,
        encoded=bytes(data),
    )


def _content_cipher(alg: int, cek: bytes, iv: bytes, data: bytes, *, encrypt: bool,
                    aad: bytes) -> bytes:
    spec = CONTENT_ALGS[alg]
    if len(cek) != spec.key_bytes:
        raise CoseError(f"{spec.name} needs a {spec.key_bytes}-byte key, got {len(cek)}")
    if spec.aead:
        gcm = AESGCM(cek)
        if encrypt:
            return gcm.encrypt(iv, data, aad)
        try:
            return gcm.decrypt(iv, data, aad)
        except InvalidTag:
            raise CoseError(f"{spec.name}: the authentication tag does not verify (wrong key, "
                            "or an altered ciphertext, IV or header)") from None
    ctr = Cipher(algorithms.AES(cek), modes.CTR(iv))
    worker = ctr.encryptor() if encrypt else ctr.decryptor()
    return worker.update(data) + worker.finalize()


def _wrap_for(recipient: RecipientKey, cek: bytes) -> list[Any]:
    if isinstance(recipient, SymmetricKey):
        kw = KW_BY_KEY_BYTES.get(len(recipient.key))
        if kw is None:
            raise CoseError(f"a key-encryption key is 16, 24 or 32 bytes, got "
                            f"{len(recipient.key)}")
        unprotected: dict[int, Any] = {HEADER_ALG: kw}
        if recipient.kid is not None:
            unprotected[HEADER_KID] = recipient.kid
        return [b"", unprotected, aes_key_wrap(recipient.key, cek)]
    if not isinstance(recipient.public_key.curve, ec.SECP256R1):
        raise CoseError("ECDH-ES recipients must have P-256 keys")
    kw = KW_BY_KEY_BYTES[len(cek)]
    alg = ECDH_BY_KW[kw]
    protected = cbor2.dumps({HEADER_ALG: alg})
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    secret = ephemeral.exchange(ec.ECDH(), recipient.public_key)
    kek = _derive_kek(secret, kw, protected, None)
    unprotected = {HEADER_EPHEMERAL_KEY: cose_key_p256(ephemeral.public_key())}
    if recipient.kid is not None:
        unprotected[HEADER_KID] = recipient.kid
    return [protected, unprotected, aes_key_wrap(kek, cek)]


def encrypt_detached(
    plaintext: bytes,
    content_alg: int,
    recipients: Sequence[RecipientKey],
    *,
    cek: bytes | None = None,
    iv: bytes | None = None,
    external_aad: bytes = b"",
) -> tuple[bytes, bytes]:
    """Encrypt ``plaintext`` for every recipient; returns (COSE_Encrypt bytes, ciphertext).

    A fresh random CEK and IV are drawn unless given (a CEK must never be reused for another
    plaintext). AES-KW recipients are wrapped with their key's size (16, 24 or 32 bytes);
    ECDH-ES recipients with the AES-KW of the CEK's size.
    """
    if content_alg not in CONTENT_ALGS:
        raise CoseError(f"content encryption {encryption_alg_name(content_alg)} is not "
                        "supported")
    if not recipients:
        raise CoseError("encrypting needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise CoseError(f"{len(recipients)} recipients, the limit is {MAX_RECIPIENTS}")
    spec = CONTENT_ALGS[content_alg]
    cek = os.urandom(spec.key_bytes) if cek is None else cek
    iv = os.urandom(spec.iv_bytes) if iv is None else iv
    if len(iv) != spec.iv_bytes:
        raise CoseError(f"{spec.name} needs a {spec.iv_bytes}-byte IV, got {len(iv)}")
    if spec.aead:
        protected = cbor2.dumps({HEADER_ALG: content_alg})
        unprotected: dict[int, Any] = {HEADER_IV: iv}
    else:
        protected = b""
        unprotected = {HEADER_ALG: content_alg, HEADER_IV: iv}
    ciphertext = _content_cipher(content_alg, cek, iv, plaintext, encrypt=True,
                                 aad=enc_structure(protected, external_aad))
    body = [protected, unprotected, None, [_wrap_for(r, cek) for r in recipients]]
    return cbor2.dumps(cbor2.CBORTag(COSE_ENCRYPT_TAG, body)), ciphertext


def _unwrap(recipient: Recipient, key: DecryptionKey) -> bytes | None:
    """The CEK if ``key`` fits ``recipient`` and unwraps it; None if it is not that key."""
    if recipient.kid is not None and key.kid is not None and recipient.kid != key.kid:
        return None
    try:
        if recipient.alg in KW_ALGS:
            if not isinstance(key, SymmetricKey) or len(key.key) != KW_ALGS[recipient.alg][1]:
                return None
            return aes_key_unwrap(key.key, recipient.encrypted_key)
        if not isinstance(key, EcdhPrivateKey) or recipient.ephemeral_key is None:
            return None
        if not isinstance(key.private_key.curve, ec.SECP256R1):
            return None
        kw = ECDH_ALGS[recipient.alg][1]
        secret = key.private_key.exchange(ec.ECDH(), recipient.ephemeral_key)
        kek = _derive_kek(secret, kw, recipient.protected_bytes, recipient.salt)
        return aes_key_unwrap(kek, recipient.encrypted_key)
    except InvalidUnwrap:
        return None


def unwrap_cek(info: EncryptInfo, keys: Sequence[DecryptionKey]) -> tuple[bytes, Recipient]:
    """The content-encryption key, unwrapped by the first recipient one of ``keys`` opens."""
    if not keys:
        raise CoseError("no decryption key given")
    size = CONTENT_ALGS[info.content_alg].key_bytes
    for recipient in info.recipients:
        for key in keys:
            cek = _unwrap(recipient, key)
            if cek is None:
                continue
            if len(cek) != size:
                raise CoseError(f"the unwrapped key is {len(cek)} bytes; "
                                f"{info.content_alg_name} needs {size}")
            return cek, recipient
    described = ", ".join(
        f"{r.alg_name}" + (f" kid {r.kid!r}" if r.kid is not None else "")
        for r in info.recipients
    )
    raise CoseError(f"none of the {len(keys)} given keys opens a recipient ({described})")


def decrypt_detached(
    info: EncryptInfo | bytes,
    ciphertext: bytes,
    keys: Sequence[DecryptionKey],
    *,
    external_aad: bytes = b"",
) -> bytes:
    """The plaintext of a detached ciphertext; raises :class:`CoseError` when no key opens a
    recipient or (AEAD) the tag does not verify."""
    decoded = decode_encrypt(info) if isinstance(info, bytes) else info
    cek, _ = unwrap_cek(decoded, keys)
    if decoded.aead and len(ciphertext) < GCM_TAG_BYTES:
        raise CoseError(f"{decoded.content_alg_name}: a ciphertext of {len(ciphertext)} bytes "
                        "has no room for its tag")
    return _content_cipher(decoded.content_alg, cek, decoded.iv, ciphertext, encrypt=False,
                           aad=enc_structure(decoded.protected_bytes, external_aad))
