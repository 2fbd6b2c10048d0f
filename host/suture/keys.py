"""Signing keys: generate, load and write PEM files; key ids; COSE algorithm of a key.

suture signs with two algorithms only:

- ``ES256``: ECDSA on NIST P-256 with SHA-256 (COSE -7). Devices verify this one.
- ``EdDSA``: Ed25519 (COSE -8).

Private keys are PKCS#8 PEM files (mode 0600); public keys are SubjectPublicKeyInfo PEM files
named like the private key with the suffix ``.pub.pem``. A key id is the SHA-256 of the DER
SubjectPublicKeyInfo: the same 32 bytes whichever tool or file format holds the key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from suture.errors import EXIT_FAILED, EXIT_USAGE, SutureError

SIGNING_ALGS: Final = ("ES256", "EdDSA")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

COSE_ALG_ES256: Final = -7
COSE_ALG_EDDSA: Final = -8

PUBLIC_SUFFIX: Final = ".pub.pem"
# A PEM key file is a few hundred bytes; refuse to read anything absurdly large.
MAX_KEY_FILE_BYTES: Final = 64 * 1024


class KeyFileError(SutureError):
    """A key file is missing, unreadable, malformed, or holds an unsupported key: an input the
    command cannot use (exit code 2)."""

    exit_code = EXIT_USAGE


class KeyFileExistsError(KeyFileError):
    """A key file to write exists already, and overwriting it was not asked for."""

    exit_code = EXIT_FAILED


def generate_private_key(alg: str) -> PrivateKey:
    """A new private key: ``"ES256"`` gives P-256, ``"EdDSA"`` gives Ed25519."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(
        f"unsupported signing algorithm {alg!r}: choose one of {', '.join(SIGNING_ALGS)}"
    )


def _read_key_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_KEY_FILE_BYTES:
            raise KeyFileError(f"{path}: {size} bytes is too large for a PEM key file")
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, not a key file") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from None


def _check_private(key: object, path: Path) -> PrivateKey:
    if isinstance(key, ed25519.Ed25519PrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise _unsupported_key(key, path)


def _check_public(key: object, path: Path) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    ):
        return key
    raise _unsupported_key(key, path)


def _unsupported_key(key: object, path: Path) -> KeyFileError:
    """The error for a key that is neither P-256 nor Ed25519, naming its curve or type."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return KeyFileError(
            f"{path}: EC key on curve {key.curve.name}; only P-256 (ES256) is supported"
        )
    return KeyFileError(
        f"{path}: {type(key).__name__} is not supported; use a P-256 (ES256) or Ed25519 (EdDSA) key"
    )


def load_private_key(path: Path) -> PrivateKey:
    """Load an unencrypted PKCS#8 (or SEC1) PEM private key; P-256 or Ed25519 only."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" not in data:
        raise KeyFileError(f"{path}: not a PEM private key (no 'PRIVATE KEY' block)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(
            f"{path}: the private key is encrypted; suture needs an unencrypted PEM"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a valid PEM private key ({exc})") from None
    return _check_private(key, path)


def load_public_key(path: Path) -> PublicKey:
    """Load a public PEM key, or derive the public key from a private PEM key."""
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    if b"PUBLIC KEY" not in data:
        raise KeyFileError(f"{path}: not a PEM public key (no 'PUBLIC KEY' block)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a valid PEM public key ({exc})") from None
    return _check_public(key, path)


def public_key_path(out: Path) -> Path:
    """Where the public half of the private key file ``out`` goes: ``out.with_suffix(".pub.pem")``.

    ``vendor.pem`` -> ``vendor.pub.pem``; ``vendor`` -> ``vendor.pub.pem``.
    """
    return out.with_suffix(PUBLIC_SUFFIX)


def private_key_pem(key: PrivateKey) -> bytes:
    """The PKCS#8 PEM encoding of a private key (unencrypted)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: PublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM encoding of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_key_pair(key: PrivateKey, out: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (private PEM, mode 0600) and its ``.pub.pem`` sibling (public PEM).

    Refuses to overwrite an existing file unless ``force``. Returns both paths.
    """
    pub = public_key_path(out)
    if not force:
        for path in (out, pub):
            if path.exists():
                raise KeyFileExistsError(
                    f"{path}: already exists; refusing to overwrite it (--force)")
    if not out.parent.is_dir():
        raise KeyFileError(f"{out.parent}: no such directory")
    _write_atomic(out, private_key_pem(key), mode=0o600)
    _write_atomic(pub, public_key_pem(key.public_key()), mode=0o644)
    return out, pub


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror or exc}") from None


def public_key_bytes(key: PublicKey) -> bytes:
    """P-256: the 65-byte uncompressed SEC1 point; Ed25519: the 32 raw bytes."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def key_id(key: PublicKey) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (32 bytes)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def key_alg_name(key: PrivateKey | PublicKey) -> str:
    """``"ES256"`` or ``"EdDSA"``."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    _require_p256(key)
    return "ES256"


def cose_algorithm(key: PrivateKey | PublicKey) -> int:
    """The COSE algorithm a key signs with: -7 (ES256) for P-256, -8 (EdDSA) for Ed25519."""
    return COSE_ALG_EDDSA if key_alg_name(key) == "EdDSA" else COSE_ALG_ES256


def _require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"EC key on curve {key.curve.name}; only P-256 is supported")
