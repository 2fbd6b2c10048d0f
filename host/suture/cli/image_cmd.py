"""`suture image`: stage0 loader images: sign, inspect, and the key provisioning record."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from suture.image import (
    HEADER_SIZE,
    ImageFormatError,
    ImageVerifyError,
    parse_header,
    provision_record,
    sign_image,
    verify_image,
)
from suture.keys import KeyFileError, key_id, load_private_key, load_public_key

image_app = typer.Typer(
    help="stage0 loader images: sign, inspect, provision the verification key.",
    no_args_is_help=True,
)
# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
# A loader image fits a loader slot; refuse to read anything absurdly large.
MAX_IMAGE_BYTES = 16 * 1024 * 1024


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise _fail(f"{path}: larger than {MAX_IMAGE_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror or exc}") from None


def _parse_version(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,5})", text)
    if not m:
        raise _fail(f"--version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.4.0", 2)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


@image_app.command("sign")
def sign(
    body: Annotated[Path, typer.Argument(help="Raw loader body (.bin), vector table first.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="ES256 private key (PEM).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Signed image to write.")],
    version: Annotated[str, typer.Option("--version", help="Image version MAJOR.MINOR.PATCH.")],
    security_counter: Annotated[
        int,
        typer.Option("--security-counter", min=0, max=0xFFFFFFFF,
                     help="Anti-rollback counter: devices refuse images below their counter."),
    ],
    load_address: Annotated[
        str,
        typer.Option("--load-address",
                     help="CPU address of the body in the loader slot (the board's "
                          "[stage0] loader_run_address), e.g. 0x00020200."),
    ],
) -> None:
    """Prepend a signed 512-byte stage0 header to a loader body.

    The header carries the SHA-256 of the body and is signed with ECDSA P-256; stage0 checks
    both, and the security counter, before it starts the loader.
    """
    ver = _parse_version(version)
    try:
        address = int(load_address, 0)
    except ValueError:
        raise _fail(f"--load-address {load_address!r} is not a number", 2) from None
    try:
        private = load_private_key(key)
        image = sign_image(_read(body), private_key=private, version=ver,
                           security_counter=security_counter, load_address=address)
    except (KeyFileError, ImageFormatError, ValueError) as exc:
        raise _fail(str(exc)) from None
    try:
        out.write_bytes(image)
    except OSError as exc:
        raise _fail(f"{out}: {exc.strerror or exc}") from None
    _out.print(f"wrote {out} ({len(image)} bytes, header {HEADER_SIZE} + body {len(image) - 512})",
               highlight=False)


@image_app.command("inspect")
def inspect(
    image: Annotated[Path, typer.Argument(help="Signed loader image.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", "-k", help="Public key (PEM) to verify the signature with."),
    ] = None,
) -> None:
    """Print a loader image's header; with --key, verify it as stage0 would (exit 1 if not)."""
    data = _read(image)
    try:
        hdr = parse_header(data)
    except ImageFormatError as exc:
        raise _fail(f"{image}: {exc}") from None
    major, minor, patch = hdr.version
    rows = [
        ("version", f"{major}.{minor}.{patch}"),
        ("security counter", str(hdr.security_counter)),
        ("load address", f"0x{hdr.load_address:08x}"),
        ("body size", str(hdr.image_size)),
        ("key id (first 8 bytes)", hdr.key_id.hex()),
        ("body SHA-256", hdr.digest.hex()),
    ]
    for name, value in rows:
        _out.print(f"{name:24} {value}", highlight=False)
    if key is not None:
        try:
            verify_image(data, load_public_key(key))
        except (KeyFileError, ImageVerifyError, ValueError) as exc:
            raise _fail(f"{image}: {exc}") from None
        _out.print(f"{'verified':24} yes (digest and signature)", highlight=False)


@image_app.command("provision")
def provision(
    key: Annotated[Path, typer.Option("--key", "-k", help="ES256 public key (PEM).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="80-byte record to write.")],
) -> None:
    """Write the provisioning record stage0 reads its verification key from.

    Program it at the board's [stage0] provision_offset in internal flash, once.
    """
    try:
        public = load_public_key(key)
        record = provision_record(public)
    except (KeyFileError, ValueError) as exc:
        raise _fail(str(exc)) from None
    try:
        out.write_bytes(record)
    except OSError as exc:
        raise _fail(f"{out}: {exc.strerror or exc}") from None
    _out.print(f"wrote {out} (key id {key_id(public).hex()})", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach the `image` command group to the root app."""
    app.add_typer(image_app, name="image")
