"""The SUIT extension options and commands of `suture suit`: MAC keys and dependency manifests
for verify, and `suture suit decrypt`. Key files: a symmetric key (HMAC key, KEK) is the file's
raw bytes; an ECDH key is a P-256 private key PEM; a ``#KID`` after the path names its kid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric import ec

from suture.cli.errors import CliError
from suture.cli.options import JsonOpt, emit_json
from suture.cose.encrypt import DecryptionKey, EcdhPrivateKey, EcdhRecipientKey, RecipientKey
from suture.cose.mac0 import SymmetricKey
from suture.errors import EXIT_USAGE
from suture.keys import load_private_key, load_public_key
from suture.suit import Envelope, SuitError, decrypt_component, verify_envelope
from suture.suit.authentication import VerificationKey

MAX_KEY_BYTES = 4096

MacKeyOption = Annotated[
    list[Path] | None,
    typer.Option("--mac-key", help="Symmetric key file (its raw bytes) for COSE_Mac0; "
                 "repeatable."),
]
DependencyKeyOption = Annotated[
    list[Path] | None,
    typer.Option("--dependency-key", help="Public key PEM of the dependency manifests' signer "
                 "(default: the --key keys); repeatable."),
]
DependencyOption = Annotated[
    list[str] | None,
    typer.Option("--dependency", help="URI=FILE: the envelope of a dependency the manifest "
                 "names by URI (not integrated); repeatable."),
]


def _split(spec: str) -> tuple[Path, bytes | None]:
    path, sep, kid = spec.partition("#")
    return Path(path), (kid.encode() if sep else None)


def symmetric_key(spec: str | Path) -> SymmetricKey:
    path, kid = _split(str(spec))
    data = path.read_bytes()
    if not data or len(data) > MAX_KEY_BYTES:
        raise CliError(f"{path}: a symmetric key file holds 1 to {MAX_KEY_BYTES} bytes",
                       EXIT_USAGE)
    return SymmetricKey(data, kid)


EncryptForOption = Annotated[
    list[str] | None,
    typer.Option("--encrypt-for", metavar="PUBKEY[#KID]",
                 help="Encrypt the components that ask for it (encryption = ...) for this "
                      "device's or group's P-256 public key PEM (ECDH-ES+AES-KW); repeatable."),
]
KekOption = Annotated[
    list[str] | None,
    typer.Option("--kek", metavar="FILE[#KID]",
                 help="... or for this key-encryption key (raw 16 or 32 bytes: A128KW, A256KW) "
                      "shared with the devices; repeatable."),
]
CiphertextDirOption = Annotated[
    Path | None,
    typer.Option("--ciphertext-dir",
                 help="Folder to write each encrypted payload to, named after the last part "
                      "of its uri (publish it there). Default: beside --out."),
]


def recipients(encrypt_for: list[str] | None, kek: list[str] | None) -> list[RecipientKey]:
    """The recipients `suit create` encrypts for: device public keys and shared KEKs."""
    out: list[RecipientKey] = [symmetric_key(s) for s in kek or []]
    for spec in encrypt_for or []:
        path, kid = _split(spec)
        public = load_public_key(path)
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
                public.curve, ec.SECP256R1):
            raise CliError(f"{path}: ECDH-ES needs a P-256 public key", EXIT_USAGE)
        out.append(EcdhRecipientKey(public, kid))
    return out


def ciphertext_name(uri: str) -> str:
    """The file name an encrypted payload fetched from ``uri`` is written under."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in (".", "..") or "\\" in name:
        raise CliError(f"uri {uri!r} names no file to write the ciphertext to", EXIT_USAGE)
    return name


def ecdh_key(spec: str) -> EcdhPrivateKey:
    path, kid = _split(spec)
    key = load_private_key(path)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CliError(f"{path}: ECDH-ES needs a P-256 private key", EXIT_USAGE)
    return EcdhPrivateKey(key, kid)


def anchors(keys: list[Path] | None, mac_keys: list[Path] | None) -> list[VerificationKey]:
    out: list[VerificationKey] = [load_public_key(p) for p in keys or []]
    out += [symmetric_key(p) for p in mac_keys or []]
    if not out:
        raise CliError("give at least one --key PUBKEY or --mac-key FILE", EXIT_USAGE)
    return out


def supplied(specs: list[str] | None) -> dict[str, bytes]:
    out = {}
    for spec in specs or []:
        uri, sep, path = spec.rpartition("=")
        if not sep or not uri:
            raise CliError(f"--dependency {spec!r}: expected URI=FILE", EXIT_USAGE)
        out[uri] = Path(path).read_bytes()
    return out


def verify_with(
    data: bytes,
    key: list[Path] | None,
    mac_key: list[Path] | None,
    dependency_key: list[Path] | None,
    dependency: list[str] | None,
) -> Envelope:
    """verify_envelope with the CLI's options."""
    dep = [load_public_key(p) for p in dependency_key] if dependency_key else None
    return verify_envelope(data, anchors(key, mac_key), dependency_keys=dep,
                           dependencies=supplied(dependency))


def decrypt(
    envelope: Annotated[Path, typer.Argument(help="Envelope whose payload to decrypt.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Plaintext file to write.")],
    key: Annotated[list[Path] | None, typer.Option(
        "--key", "-k", help="Public key PEM to verify the envelope with; repeatable.")] = None,
    mac_key: MacKeyOption = None,
    dependency_key: DependencyKeyOption = None,
    dependency: DependencyOption = None,
    component: Annotated[int, typer.Option("--component", help="Component index.")] = 0,
    ciphertext: Annotated[Path | None, typer.Option(
        "--ciphertext", help="The fetched ciphertext (when not in the envelope).")] = None,
    kek: Annotated[list[str] | None, typer.Option(
        "--kek", help="Key-encryption key file (raw bytes)[#KID]; repeatable.")] = None,
    ecdh: Annotated[list[str] | None, typer.Option(
        "--ecdh-key", help="The recipient's P-256 private key PEM[#KID]; repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify an envelope, decrypt one component's payload and check it against the manifest
    (draft-ietf-suit-firmware-encryption: AES-KW or ECDH-ES+AES-KW, AES-GCM or AES-CTR)."""
    data = envelope.read_bytes()
    keys: list[DecryptionKey] = [symmetric_key(s) for s in kek or []]
    keys += [ecdh_key(s) for s in ecdh or []]
    if not keys:
        raise CliError("give at least one --kek FILE or --ecdh-key PEM", EXIT_USAGE)
    try:
        verified = verify_with(data, key, mac_key, dependency_key, dependency)
    except SuitError as exc:
        raise SuitError(f"{envelope}: invalid: {exc}") from None
    given = ciphertext.read_bytes() if ciphertext is not None else None
    result = decrypt_component(verified, component, keys, ciphertext=given)
    out.write_bytes(result.plaintext)
    summary = {"out": str(out), "bytes": len(result.plaintext),
               "checked_against": result.checked_against}
    if as_json:
        emit_json(summary)
    else:
        typer.echo(json.dumps(summary))
