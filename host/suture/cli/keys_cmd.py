"""`suture keygen`: generate signing keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from suture.cli.errors import CliError, SutureCommand
from suture.cli.options import JsonOpt, emit_json
from suture.errors import EXIT_USAGE
from suture.keys import SIGNING_ALGS, generate_private_key, key_id, write_key_pair

# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)


def keygen(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Private key file to write (PEM, mode 0600); the public key goes beside it "
            "with the suffix .pub.pem.",
        ),
    ],
    alg: Annotated[
        str,
        typer.Option("--alg", help="ES256 (ECDSA P-256: devices verify it) or EdDSA (Ed25519)."),
    ] = "ES256",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing key files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate a signing key pair: a private PEM and its public PEM (.pub.pem).

    Keep the private key offline; give the .pub.pem file to whoever verifies (the hospital's
    scheduler, the devices' trust anchors). Prints the key id: the SHA-256 of the public key.
    """
    if alg not in SIGNING_ALGS:
        raise CliError(f"--alg {alg!r}: choose one of {', '.join(SIGNING_ALGS)}", EXIT_USAGE)
    key = generate_private_key(alg)
    private, public = write_key_pair(key, out, force=force)
    kid = key_id(key.public_key()).hex()
    if as_json:
        emit_json({"private_key": str(private), "public_key": str(public), "alg": alg,
                   "key_id": kid})
        return
    _out.print(f"private key  {private}  ({alg}, keep it secret)", highlight=False)
    _out.print(f"public key   {public}", highlight=False)
    _out.print(f"key id       {kid}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach the `keygen` command to the root app."""
    app.command("keygen", cls=SutureCommand)(keygen)

