"""`suture suit`: SUIT envelopes: create, sign, sever, inspect and verify."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from suture.cli import suit_ext
from suture.cli.errors import CliError, SutureTyper, describe
from suture.cli.options import JsonOpt, emit_json
from suture.errors import EXIT_USAGE
from suture.keys import (
    PrivateKey,
    PublicKey,
    key_id,
    load_private_key,
    load_public_key,
)
from suture.suit import (
    MAX_ENVELOPE_BYTES,
    SuitError,
    create_release,
    create_unsigned_release,
    decode_envelope,
    envelope_summary,
    load_description,
    sever_envelope,
    sign_envelope,
    verify_envelope,
)
from suture.suit.inspect import render

suit_app = SutureTyper(
    help="SUIT envelopes: create, sign, sever, inspect and verify.", no_args_is_help=True,
)

# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)


def _read_envelope(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_ENVELOPE_BYTES:
        raise SuitError(f"{path}: {size} bytes is over the envelope limit of {MAX_ENVELOPE_BYTES}")
    return path.read_bytes()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _public_keys(paths: list[Path]) -> list[PublicKey]:
    if not paths:
        raise CliError("give at least one --key PUBKEY", EXIT_USAGE)
    return [load_public_key(p) for p in paths]


KeyOption = Annotated[
    list[Path],
    typer.Option(
        "--key",
        "-k",
        help="Public key PEM (or private key PEM) to verify with; repeat for several.",
    ),
]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Envelope file to write.")]
SigningKey = Annotated[
    Path | None, typer.Option("--key", "-k", help="Private key PEM to sign with (ES256 or EdDSA).")
]


def _private_key(path: Path) -> PrivateKey:
    return load_private_key(path)


@suit_app.command("create")
def create(
    description: Annotated[
        Path, typer.Argument(help="Description file (.toml, .yaml or .json); see docs/suit.md.")
    ],
    out: OutOption,
    key: SigningKey = None,
    unsigned: Annotated[
        bool,
        typer.Option("--unsigned", help="Write an unsigned envelope (digest only) to sign later."),
    ] = False,
    kid: Annotated[
        bool, typer.Option("--kid", help="Put the signer's key id in the COSE header.")
    ] = False,
    base_dir: Annotated[
        Path | None,
        typer.Option(
            "--base-dir",
            help="Folder the image files are relative to (default: the description's folder).",
        ),
    ] = None,
    encrypt_for: suit_ext.EncryptForOption = None,
    kek: suit_ext.KekOption = None,
    ciphertext_dir: suit_ext.CiphertextDirOption = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a SUIT envelope from a description and sign it.

    Image digests and sizes are computed from the files the description names. With
    --unsigned the envelope carries only the manifest digest: sign it later with
    `suture suit sign` (verification rejects it until then). A component whose description
    says `encryption = "A128GCM"` (or A256GCM, A128CTR, A256CTR) is encrypted for every
    --encrypt-for public key and --kek key; its ciphertext is written to --ciphertext-dir
    under the last part of its uri, and the manifest's digest stays that of the plaintext.
    """
    if (key is None) != unsigned:
        raise CliError("give either --key KEY or --unsigned", EXIT_USAGE)
    try:
        data = load_description(description)
    except SuitError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    root = base_dir if base_dir is not None else description.parent
    targets = suit_ext.recipients(encrypt_for, kek)
    if key is None:
        release = create_unsigned_release(data, base_dir=root, recipients=targets)
    else:
        private = _private_key(key)
        signer = key_id(private.public_key()) if kid else None
        release = create_release(data, private, base_dir=root, recipients=targets, kid=signer)
    if targets and not release.encrypted_payloads:
        raise CliError("--encrypt-for/--kek given, but no component of the description asks "
                       "for encryption (encryption = \"A128GCM\", with a uri)", EXIT_USAGE)
    folder = ciphertext_dir if ciphertext_dir is not None else out.parent
    written = {uri: folder / suit_ext.ciphertext_name(uri)
               for uri in release.encrypted_payloads}
    envelope = release.envelope
    _write(out, envelope)
    for uri, path in written.items():
        _write(path, release.encrypted_payloads[uri])
    state = "unsigned" if key is None else "signed"
    if as_json:
        emit_json({"envelope": str(out), "bytes": len(envelope), "signed": key is not None,
                   "ciphertexts": {uri: str(p) for uri, p in written.items()}})
        return
    _out.print(f"wrote {out} ({len(envelope)} bytes, {state})", highlight=False)
    for uri, path in written.items():
        _out.print(f"wrote {path} (ciphertext to publish at {uri})", highlight=False)


@suit_app.command("sign")
def sign(
    envelope: Annotated[Path, typer.Argument(help="Envelope to sign (signed or unsigned).")],
    key: Annotated[Path, typer.Option("--key", "-k", help="Private key PEM to sign with.")],
    out: OutOption,
    append: Annotated[
        bool,
        typer.Option("--append", help="Keep the existing signatures and add this one."),
    ] = False,
    kid: Annotated[
        bool, typer.Option("--kid", help="Put the signer's key id in the COSE header.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign an envelope: replace its signatures (or --append one) with one made by KEY.

    The manifest and the severable members are kept byte for byte.
    """
    data = _read_envelope(envelope)
    private = _private_key(key)
    signed = sign_envelope(
        data, private, append=append, kid=key_id(private.public_key()) if kid else None
    )
    _write(out, signed)
    if as_json:
        emit_json({"envelope": str(out), "bytes": len(signed),
                   "signer_key_id": key_id(private.public_key()).hex(), "appended": append})
        return
    _out.print(f"wrote {out} ({len(signed)} bytes)", highlight=False)


@suit_app.command("sever")
def sever(
    envelope: Annotated[Path, typer.Argument(help="Signed envelope.")],
    out: OutOption,
    member: Annotated[
        list[str],
        typer.Option(
            "--member", "-m", help="Member to remove: install, payload-fetch or text; repeatable."
        ),
    ],
) -> None:
    """Remove severable members; the manifest keeps their digests, the signature stays valid."""
    data = _read_envelope(envelope)
    severed = sever_envelope(data, member)
    _write(out, severed)
    _out.print(f"wrote {out} ({len(severed)} bytes, without {', '.join(member)})")


@suit_app.command("inspect")
def inspect(
    envelope: Annotated[Path, typer.Argument(help="Envelope to show.")],
    as_json: JsonOpt = False,
    key: Annotated[
        list[Path] | None,
        typer.Option("--key", "-k", help="Also verify with this public key; repeatable."),
    ] = None,
) -> None:
    """Show an envelope: sequence number, components (digest, size, uri), sequences, text.

    Decoding alone checks no signature; with --key the envelope is verified first (exit 1 if
    it does not verify) and the signer's key id is shown.
    """
    data = _read_envelope(envelope)
    try:
        decoded = verify_envelope(data, _public_keys(key)) if key else decode_envelope(data)
    except SuitError as exc:
        raise SuitError(f"{envelope}: {exc}") from None
    if as_json:
        emit_json(envelope_summary(decoded))
    else:
        render(decoded, _out)


@suit_app.command("verify")
def verify(
    envelope: Annotated[Path, typer.Argument(help="Envelope to verify.")],
    key: Annotated[list[Path] | None, typer.Option(
        "--key", "-k",
        help="Public key PEM (or private key PEM) to verify with; repeat for several.")] = None,
    mac_key: suit_ext.MacKeyOption = None,
    dependency_key: suit_ext.DependencyKeyOption = None,
    dependency: suit_ext.DependencyOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON; on failure a JSON object "
        '{"valid": false, "error": ..., "exit_code": ...} (and the exit code).')] = False,
) -> None:
    """Verify an envelope: manifest digest, signature or MAC, severable members, and the
    dependency manifests it names (each under --dependency-key, by default --key).

    Exit status: 0 valid, 1 invalid (the reason is printed), 2 usage error.
    """
    try:
        data = _read_envelope(envelope)
        if not mac_key:
            _public_keys(key or [])
        try:
            verified = suit_ext.verify_with(data, key, mac_key, dependency_key, dependency)
        except SuitError as exc:
            raise SuitError(f"{envelope}: invalid: {exc}") from None
    except Exception as exc:
        found = describe(exc)
        if as_json and found is not None:
            emit_json({"envelope": str(envelope), "valid": False, "error": found[0],
                       "error_type": type(exc).__name__, "exit_code": found[1]})
        raise
    if as_json:
        emit_json({"valid": True, **envelope_summary(verified)})
        return
    signers = ", ".join(k.hex() for k in verified.signer_key_ids)
    _out.print(
        f"{envelope}: valid, sequence number {verified.manifest.sequence_number}, "
        f"signed by key id {signers}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Attach the `suit` command group to the root app."""
    suit_app.command("decrypt")(suit_ext.decrypt)
    app.add_typer(suit_app, name="suit")
