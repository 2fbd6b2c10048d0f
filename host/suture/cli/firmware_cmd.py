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
from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import JsonOpt
from suture.errors import EXIT_USAGE
from suture.firmware.build import build_firmware, dev_keys, firmware_folder
from suture.firmware.source import MICROPYTHON_VERSION, MICROPYTHON_VERSIONS
from suture.keys import load_private_key, load_public_key
from suture.sim.testing import CLASS_ID, VENDOR_ID

firmware_app = SutureTyper(
    help="Build MicroPython with the frozen loader for a board, signed as a loader image.",
    no_args_is_help=True,
)
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)  # the build's progress lines


def _uuid(option: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a UUID", EXIT_USAGE) from None


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
    micropython_version: Annotated[str, typer.Option(
        "--micropython-version",
        help=f"MicroPython release to build from ({', '.join(MICROPYTHON_VERSIONS)}); another "
             f"than {MICROPYTHON_VERSION} builds into build/firmware/<board>-micropython-"
             "<version> with the board's development keys.")] = MICROPYTHON_VERSION,
    as_json: JsonOpt = False,
) -> None:
    """Build the firmware from MicroPython v1.28.0 (MICROPY_DIR, or the pinned tarball in
    ../shared/deps checked against SHA256SUMS; --micropython-version 1.27.0 for the previous
    release), freeze the loader and the board's board_config, and sign the binary as a loader
    image (OUT/loader.img)."""
    b = load_board(board)
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CliError(f"--version {version!r}: expected MAJOR.MINOR.PATCH", EXIT_USAGE)
    ids = _uuid("--vendor-id", vendor_id), _uuid("--class-id", class_id)
    if micropython_version not in MICROPYTHON_VERSIONS:
        raise CliError(f"--micropython-version {micropython_version!r}: one of "
                       f"{', '.join(MICROPYTHON_VERSIONS)}", EXIT_USAGE)
    root = Path("build") / "firmware"
    folder = out or firmware_folder(root, b.name, micropython_version)
    dev_vendor, dev_loader = dev_keys((out or root / b.name) / "keys")
    vkeys = [load_public_key(p) for p in vendor_key] if vendor_key else [
        dev_vendor.public_key()]
    lkey = load_private_key(loader_key) if loader_key else dev_loader
    points = []
    for k in vkeys:
        if not isinstance(k, ec.EllipticCurvePublicKey):
            raise CliError("vendor keys must be ES256 (P-256) keys", EXIT_USAGE)
        points.append(k.public_bytes(serialization.Encoding.X962,
                                     serialization.PublicFormat.UncompressedPoint))
    fw = build_firmware(
        b, folder, vendor_keys=points, vendor_id=ids[0], class_id=ids[1], loader_key=lkey,
        version=(int(parts[0]), int(parts[1]), int(parts[2])),
        security_counter=security_counter, micropython_version=micropython_version,
        log=(lambda _l: None) if as_json else (lambda line: _err.print(line, highlight=False)),
    )
    result = {
        "board": fw.board, "micropython_version": micropython_version, "elf": str(fw.elf),
        "binary": str(fw.binary),
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


@firmware_app.command("image")
def image(
    board: Annotated[str, typer.Option("--board", "-b", help="A QEMU board (boards/<name>).")],
    app: Annotated[Path, typer.Option(
        help="The first application: a folder (its files become the bundle) or a .bundle "
             "file.")],
    app_version: Annotated[int, typer.Option(
        "--app-version", help="The first application's version (SUIT sequence number).")] = 1,
    firmware: Annotated[Path | None, typer.Option(
        help="The build folder of `suture firmware build` [default: build/firmware/<board>].")]
    = None,
    out: Annotated[Path | None, typer.Option(
        help="The image file [default: FIRMWARE/device.bin].")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the whole-device image of a QEMU board: stage0, its provisioning record, the
    signed loader image and littlefs with the first application installed and confirmed by
    the loader on an emulated first power-on. Run the device with
    `qemu-system-arm -M mps2-an385,memory-backend=flash -object
    memory-backend-file,id=flash,mem-path=device.bin,size=16M,share=on -m 16M -nographic
    -semihosting -kernel stage0/build/an385/stage0.elf`."""
    import tempfile

    from suture.bundle import build_bundle_from_dir
    from suture.firmware.device_image import build_device_image
    from suture.firmware.errors import FirmwareError
    from suture.firmware.source import REPO_ROOT

    b = load_board(board)
    if b.qemu is None:
        raise CliError(f"{b.name} is not a QEMU board", EXIT_USAGE)
    folder = firmware or Path("build") / "firmware" / b.name
    loader_img = folder / "loader.img"
    if not loader_img.is_file():
        raise FirmwareError(f"{loader_img} is missing: run `make firmware BOARD={b.name}` first")
    bundle = build_bundle_from_dir(app) if app.is_dir() else app.read_bytes()
    loader_key = dev_keys(folder / "keys")[1].public_key()
    with tempfile.TemporaryDirectory() as work:
        result = build_device_image(
            b, stage0_elf=REPO_ROOT / "stage0" / "build" / b.qemu.build / "stage0.elf",
            loader_image=loader_img.read_bytes(), loader_key=loader_key,
            app_bundle=bundle, app_version=app_version,
            out=out or folder / "device.bin", work=Path(work))
    fields = {"image": str(result.path), "image_bytes": result.image_bytes,
              "stage0_bytes": result.stage0_bytes,
              "loader_image_bytes": result.loader_image_bytes,
              "filesystem_used_bytes": result.filesystem_used_bytes,
              "app_version": result.app_version}
    if as_json:
        typer.echo(json.dumps(fields))
        return
    _out.print(f"whole-device image for {b.name}: {result.path} ({result.image_bytes:,} bytes)")
    _out.print(f"  stage0 {result.stage0_bytes:,} B, loader image {result.loader_image_bytes:,} B"
               f", littlefs {result.filesystem_used_bytes:,} B in use (application "
               f"{result.app_version}, confirmed)")


def register(app: typer.Typer) -> None:
    """Attach the `firmware` command group to the root app."""
    app.add_typer(firmware_app, name="firmware")
