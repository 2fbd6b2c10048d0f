"""`suture firmware`: build a board's MicroPython firmware with the frozen loader, signed as a
loader image (what `make firmware BOARD=...` runs)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console

from suture.boards import load_board
from suture.boards.firmware_config import FirmwareConfigError
from suture.firmware.build import build_firmware, dev_keys
from suture.firmware.errors import FirmwareError
from suture.keys import KeyFileError, load_private_key, load_public_key
from suture.sim.testing import CLASS_ID, VENDOR_ID

firmware_app = typer.Typer(
    help="Build MicroPython with the frozen loader for a board, signed as a loader image.",
    no_args_is_help=True,
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@firmware_app.command("build")
def build(
    board: Annotated[str, typer.Option("--board", "-b", help="Board name (boards/<name>).")],
    out: Annotated[Path | None, typer.Option(
        help="Output folder [default: build/firmware/<board>].")] = None,
    vendor_key: Annotated[list[Path] | None, typer.Option(
        help="Public key (PEM) the loader trusts for SUIT releases; repeat for several. "
             "Default: the build folder's development key (keys/vendor.pem, made once).")] = None,
    loader_key: Annotated[Path | None, typer.Option(
        help="Private ES256 key (PEM) that signs the loader image, whose public half stage0 "
             "is provisioned with. Default: the build folder's keys/loader.pem.")] = None,
    vendor_id: Annotated[str, typer.Option(help="Vendor UUID the loader accepts.")] = str(
        VENDOR_ID),
    class_id: Annotated[str, typer.Option(help="Device class UUID the loader accepts.")] = str(
        CLASS_ID),
    version: Annotated[str, typer.Option(help="Loader image version MAJOR.MINOR.PATCH.")] = "1.0.0",
    security_counter: Annotated[int, typer.Option(
        help="Anti-rollback counter in the image header.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Build the firmware from MicroPython v1.28.0 (MICROPY_DIR, or the pinned tarball in
    ../shared/deps checked against SHA256SUMS), freeze the loader and the board's
    board_config, and sign the binary as a loader image (OUT/loader.img)."""
    try:
        b = load_board(board)
    except Exception as e:
        raise _fail(str(e), 2) from None
    folder = out or Path("build") / "firmware" / b.name
    try:
        dev_vendor, dev_loader = dev_keys(folder / "keys")
        vkeys = [load_public_key(p) for p in vendor_key] if vendor_key else [
            dev_vendor.public_key()]
        lkey = load_private_key(loader_key) if loader_key else dev_loader
        points = []
        for k in vkeys:
            if not isinstance(k, ec.EllipticCurvePublicKey):
                raise _fail("vendor keys must be ES256 (P-256) keys", 2)
            points.append(k.public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint))
        parts = version.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise _fail(f"--version {version!r}: expected MAJOR.MINOR.PATCH", 2)
        fw = build_firmware(
            b, folder, vendor_keys=points, vendor_id=uuid.UUID(vendor_id),
            class_id=uuid.UUID(class_id), loader_key=lkey,
            version=(int(parts[0]), int(parts[1]), int(parts[2])),
            security_counter=security_counter,
            log=(lambda _l: None) if as_json else (lambda line: _err.print(line, highlight=False)),
        )
    except (FirmwareError, FirmwareConfigError, KeyFileError, ValueError) as e:
        raise _fail(str(e)) from None
    result = {
        "board": fw.board, "elf": str(fw.elf), "binary": str(fw.binary),
        "loader_image": str(fw.loader_image), "text_bytes": fw.text_bytes,
        "data_bytes": fw.data_bytes, "bss_bytes": fw.bss_bytes,
        "flash_bytes": fw.flash_bytes, "loader_image_bytes": fw.image_bytes,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    _out.print(f"firmware for {fw.board}: {fw.flash_bytes:,} bytes in flash "
               f"(text {fw.text_bytes:,}, data {fw.data_bytes:,}; RAM bss {fw.bss_bytes:,})")
    _out.print(f"loader image: {fw.loader_image} ({fw.image_bytes:,} bytes, signed)")


def register(app: typer.Typer) -> None:
    app.add_typer(firmware_app, name="firmware")
