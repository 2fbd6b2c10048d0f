"""`suture image`: stage0 loader images: sign, inspect, and the key provisioning record."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from suture.boards import load_board
from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import JsonOpt, emit_json
from suture.errors import EXIT_USAGE
from suture.image import (
    HEADER_SIZE,
    ImageError,
    parse_header,
    provision_record,
    sign_image,
    verify_image,
)
from suture.keys import key_id, load_private_key, load_public_key

image_app = SutureTyper(
    help="stage0 loader images: sign, inspect, provision the verification key.",
    no_args_is_help=True,
)
# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)
# A loader image fits a loader slot; refuse to read anything absurdly large.
MAX_IMAGE_BYTES = 16 * 1024 * 1024
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,8})")


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ImageError(f"{path}: larger than {MAX_IMAGE_BYTES} bytes")
    return path.read_bytes()


def _parse_version(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,5})", text)
    if not m:
        raise CliError(f"--version {text!r}: expected MAJOR.MINOR.PATCH, e.g. 1.4.0", EXIT_USAGE)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_hex_address(text: str) -> int:
    """A 32-bit address written in hexadecimal, with or without ``0x``: ``20200`` is 0x20200."""
    m = _HEX.fullmatch(text.strip())
    if not m:
        raise CliError(f"--load-address {text!r}: expected a hexadecimal address of at most 32 "
                       "bits, e.g. 0x21020200", EXIT_USAGE)
    return int(m.group(1), 16)


def _load_address(text: str | None, board_name: str | None) -> int:
    if text is None and board_name is None:
        raise CliError("give --load-address ADDRESS or --board NAME (or both)", EXIT_USAGE)
    address = parse_hex_address(text) if text is not None else None
    if board_name is None:
        assert address is not None
        return address
    from suture.firmware.build import loader_address
    from suture.firmware.errors import FirmwareError

    board = load_board(board_name)
    try:
        expected = loader_address(board)
    except FirmwareError as exc:
        raise CliError(f"{exc}: it cannot run a loader image", EXIT_USAGE) from None
    if address is not None and address != expected:
        raise CliError(f"--load-address 0x{address:08X} is not where {board.name} runs a loader "
                       f"image: 0x{expected:08X} (its loader slot, after the {HEADER_SIZE}-byte "
                       "header)", EXIT_USAGE)
    return expected


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
        str | None,
        typer.Option("--load-address",
                     help="CPU address of the body in the loader slot, in hexadecimal with or "
                          "without 0x (20200 is 0x20200), e.g. 0x21020200. Default with "
                          "--board: the board's."),
    ] = None,
    board: Annotated[
        str | None,
        typer.Option("--board", "-b",
                     help="Check --load-address against this board's flash map (boards/<name>): "
                          "its loader slot's address after the 512-byte header."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Prepend a signed 512-byte stage0 header to a loader body.

    The header carries the SHA-256 of the body and is signed with ECDSA P-256; stage0 checks
    both, and the security counter, before it starts the loader.
    """
    ver = _parse_version(version)
    address = _load_address(load_address, board)
    private = load_private_key(key)
    image = sign_image(_read(body), private_key=private, version=ver,
                       security_counter=security_counter, load_address=address)
    out.write_bytes(image)
    if as_json:
        emit_json({"image": str(out), "bytes": len(image), "header_bytes": HEADER_SIZE,
                   "body_bytes": len(image) - HEADER_SIZE, "load_address": f"0x{address:08x}",
                   "version": version, "security_counter": security_counter})
        return
    _out.print(f"wrote {out} ({len(image)} bytes, header {HEADER_SIZE} + body "
               f"{len(image) - HEADER_SIZE}, load address 0x{address:08X})", highlight=False)


@image_app.command("inspect")
def inspect(
    image: Annotated[Path, typer.Argument(help="Signed loader image.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", "-k", help="Public key (PEM) to verify the signature with."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a loader image's header; with --key, verify it as stage0 would (exit 1 if not)."""
    data = _read(image)
    try:
        hdr = parse_header(data)
        if key is not None:
            verify_image(data, load_public_key(key))
    except ImageError as exc:
        raise ImageError(f"{image}: {exc}") from None
    major, minor, patch = hdr.version
    if as_json:
        emit_json({"image": str(image), "version": f"{major}.{minor}.{patch}",
                   "security_counter": hdr.security_counter,
                   "load_address": f"0x{hdr.load_address:08x}", "body_size": hdr.image_size,
                   "key_id_prefix": hdr.key_id.hex(), "body_sha256": hdr.digest.hex(),
                   "verified": key is not None})
        return
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
        _out.print(f"{'verified':24} yes (digest and signature)", highlight=False)


@image_app.command("provision")
def provision(
    key: Annotated[Path, typer.Option("--key", "-k", help="ES256 public key (PEM).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="80-byte record to write.")],
    as_json: JsonOpt = False,
) -> None:
    """Write the provisioning record stage0 reads its verification key from.

    Program it at the board's [stage0] provision_offset in internal flash, once.
    """
    public = load_public_key(key)
    record = provision_record(public)
    out.write_bytes(record)
    if as_json:
        emit_json({"record": str(out), "bytes": len(record), "key_id": key_id(public).hex()})
        return
    _out.print(f"wrote {out} (key id {key_id(public).hex()})", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach the `image` command group to the root app."""
    app.add_typer(image_app, name="image")
