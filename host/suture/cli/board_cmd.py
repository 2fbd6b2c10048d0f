"""`suture board`: Board definitions, provisioning, deploying and local updates."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from suture.boardops.decommission import decommission
from suture.boardops.deploy import compile_tree, deploy, local_update
from suture.boardops.flash_runner import run_flash_plan
from suture.boardops.flashing import CopyToVolume, FlashPlanError, Images, flash_plan, write_uf2
from suture.boardops.provision import (
    ProvisionRequest,
    provision,
    set_decryption_keys,
    set_link,
)
from suture.boardops.scheduler_client import SchedulerClient
from suture.boardops.session import open_board, probe_port
from suture.boardops.sim_status import read_sim_status
from suture.boardops.swd import probe_update, sim_swd_update
from suture.boards import (
    Board,
    BoardDefinitionError,
    board_names,
    boards_dir,
    check_board,
    largest_payload,
    load_board,
    load_board_file,
)
from suture.boards.tools import check_board_tools
from suture.bundle import BundleError, build_bundle_from_dir
from suture.cli import suit_ext
from suture.cli.errors import CliError, SutureTyper
from suture.cli.options import DryRunOpt, JsonOpt, YesOpt, confirm, emit_json
from suture.devicectl import device_ops
from suture.errors import EXIT_USAGE
from suture.firmware.board_config import LoaderTrust, write_firmware_dir
from suture.formats.identity import ENC_KIND_ECDH, ENC_KIND_KEK, EnrolmentError, encryption_keys
from suture.keys import KeyFileError, load_private_key, load_public_key, public_key_bytes
from suture.sim import DeviceIdentity
from suture.sim.testing import CLASS_ID, VENDOR_ID

board_app = SutureTyper(
    help="Board definitions, provisioning, deploying and local updates.", no_args_is_help=True
)

# soft_wrap: a printed line is never broken at the terminal's width, so paths, key ids and
# verdicts stay whole (and greppable); tables and panels still fit the terminal.
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


BoardsDir = Annotated[
    Path | None,
    typer.Option(
        "--boards-dir", help="Folder of board definitions (default: the repository's boards/)."
    ),
]


@board_app.command("list")
def list_boards(boards: BoardsDir = None, as_json: JsonOpt = False) -> None:
    """List the board definitions: name, core, MicroPython port, stage0, flashing method."""
    table = Table("board", "core", "micropython", "stage0", "flashing")
    rows: list[dict[str, object]] = []
    for name in board_names(boards):
        try:
            board = load_board(name, boards)
        except BoardDefinitionError as exc:
            table.add_row(name, "[red]invalid[/red]", "-", "-", str(exc).splitlines()[0])
            rows.append({"name": name, "valid": False, "error": str(exc)})
            continue
        port = f"{board.micropython.port}/{board.micropython.board}" if board.micropython else "-"
        table.add_row(
            board.name,
            board.core,
            port,
            "yes" if board.stage0 else "no",
            board.flashing.method,
        )
        rows.append({"name": board.name, "valid": True, "core": board.core,
                     "micropython": port if board.micropython else None,
                     "stage0": board.stage0, "flashing": board.flashing.method})
    if as_json:
        emit_json(rows)
        return
    _out.print(table)


def _region_table(title: str, base: int, rows: list[tuple[str, str, int, int]]) -> Table:
    table = Table("region", "kind", "offset", "address", "size", "end", title=title)
    for name, kind, offset, size in sorted(rows, key=lambda r: r[2]):
        table.add_row(
            name,
            kind,
            f"0x{offset:08X}",
            f"0x{base + offset:08X}",
            f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B",
            f"0x{offset + size:08X}",
        )
    return table


@board_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Board name, e.g. `sim` or `rpi-pico`.")],
    boards: BoardsDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one board: core, MicroPython port, flashing method and both flash maps."""
    board = load_board(name, boards)
    if as_json:
        payload, region = largest_payload(board)
        emit_json({**board.model_dump(mode="json"), "largest_payload": payload,
                   "largest_payload_region": region or None})
        return
    _out.print(f"[bold]{board.name}[/bold]: {board.description}", highlight=False)
    _out.print(f"MCU {board.mcu}, core {board.core}", highlight=False)
    if board.stage0 and board.boot_address is not None:
        _out.print(f"stage0 at the boot address 0x{board.boot_address:08X}", highlight=False)
    else:
        _out.print(f"no stage0: {board.stage0_note}", highlight=False)
    if board.micropython:
        mp = board.micropython
        _out.print(f"MicroPython port {mp.port}, board {mp.board}", highlight=False)
    fl = board.flashing
    others = f" (also: {', '.join(fl.alternatives)})" if fl.alternatives else ""
    _out.print(f"flashing: {fl.method}{others}", highlight=False)
    internal, external = board.internal_flash, board.external_flash
    _out.print(
        _region_table(
            f"internal flash, {internal.size // 1024} KiB at 0x{internal.base:08X}",
            internal.base,
            [(r.name, r.kind, r.offset, r.size) for r in internal.regions],
        )
    )
    _out.print(
        _region_table(
            f"external flash {external.chip} (JEDEC 0x{external.jedec_id:06X}), "
            f"{external.size // 1024} KiB",
            0,
            [(r.name, r.role, r.offset, r.size) for r in external.regions],
        )
    )
    payload, region = largest_payload(board)
    if region:
        _out.print(f"largest payload: {payload // 1024} KiB (region {region})", highlight=False)


@board_app.command("check")
def check(
    names: Annotated[
        list[str] | None, typer.Argument(help="Boards to check (default: every definition).")
    ] = None,
    boards: BoardsDir = None,
    file: Annotated[
        list[Path] | None,
        typer.Option(help="Check this board.toml file (repeatable) instead of named boards."),
    ] = None,
) -> None:
    """Check board definitions against the schema, the flash-map rules and the tools.

    Regions inside the flash, no overlaps, sector alignment, stage0 at the boot
    address (or its alias), staging and backup slots large enough for the
    largest payload; and what the pinned flashing tools know: the esptool chip
    and its bootloader offset, the adafruit-nrfutil --dev-type, the pyocd
    target and its flash algorithm's sectors and program unit. Exits non-zero
    and names each broken rule (board, region, numbers) when any fails; a
    check a missing tool or CMSIS pack cannot make is a note.
    """
    targets: list[tuple[str, Path | None]] = []
    if file:
        targets = [(str(path), path) for path in file]
    else:
        chosen = names or board_names(boards)
        if not chosen:
            raise BoardDefinitionError(f"no board definitions found in {boards or boards_dir()}")
        targets = [(name, None) for name in chosen]
    failures = 0
    for label, path in targets:
        try:
            board = load_board_file(path) if path is not None else load_board(label, boards)
        except BoardDefinitionError as exc:
            failures += 1
            _err.print(f"[red]FAIL[/red] {exc}", highlight=False, soft_wrap=True)
            continue
        tools = check_board_tools(board)
        problems = [*check_board(board), *tools.problems]
        for note in tools.notes:
            _err.print(f"[yellow]note[/yellow] {note}", highlight=False, soft_wrap=True)
        if problems:
            failures += 1
            for problem in problems:
                _err.print(f"[red]FAIL[/red] {problem}", highlight=False, soft_wrap=True)
        else:
            _out.print(f"[green]ok[/green]   {board.name}", highlight=False)
    if failures:
        raise BoardDefinitionError(f"{failures} of {len(targets)} board definitions are broken")



# Methods whose tool takes a file suture builds (`suture board image`).
IMAGE_METHODS = ("esptool", "uf2", "adafruit-nrfutil")


@board_app.command("image")
def image_cmd(
    name: Annotated[str, typer.Argument(help="Board name, e.g. `esp32-s3` or `rpi-pico`.")],
    out: Annotated[Path, typer.Option(help="The file to write.")],
    firmware: Annotated[
        Path | None, typer.Option(help="Loader image (MicroPython firmware): uf2, DFU package.")
    ] = None,
    stage0: Annotated[Path | None, typer.Option(help="stage0 image (uf2, boards with stage0).")
                      ] = None,
    bootloader: Annotated[
        Path | None, typer.Option(help="ESP-IDF's bootloader.bin (esptool).")
    ] = None,
    partition_table: Annotated[
        Path | None, typer.Option(help="ESP-IDF's partition-table.bin (esptool).")
    ] = None,
    app: Annotated[
        Path | None,
        typer.Option(help="MicroPython's app image, or its ELF to convert (esptool)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help="The file to build: esptool (a merged flash image), uf2 or "
                     "adafruit-nrfutil (a serial-DFU package). Default: the board's first."),
    ] = None,
    boards: BoardsDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the file a board's flashing tool takes, without a board.

    esptool: MicroPython's flash image, merged by esptool from ESP-IDF's
    bootloader, partition table and app (an ELF is converted with elf2image) at
    the board's [flashing.esptool_image] offsets, the flash size set from the
    board, then read back. uf2: one UF2 file holding stage0 and the loader image
    at their addresses. adafruit-nrfutil: the serial-DFU package of the loader
    image, read back (init packet, CRC-16).
    """
    board = load_board(name, boards)
    chosen = method or next((m for m in board.flashing.methods if m in IMAGE_METHODS), None)
    if chosen not in IMAGE_METHODS:
        raise CliError(f"board {board.name} is flashed with {', '.join(board.flashing.methods)}: "
                       f"no image file to build (--method {' | '.join(IMAGE_METHODS)})",
                       EXIT_USAGE)
    if chosen not in board.flashing.methods:
        raise FlashPlanError(f"board {board.name} is not flashed with {chosen!r}; it supports "
                             f"{', '.join(board.flashing.methods)}")
    esp_parts = {"bootloader": bootloader, "partition_table": partition_table, "app": app}
    given = {"firmware": firmware, "stage0": stage0, **esp_parts}
    needed = ("bootloader", "partition_table", "app") if chosen == "esptool" else ("firmware",)
    allowed = (*needed, "stage0") if chosen == "uf2" else needed
    for option, path in given.items():
        flag = f"--{option.replace('_', '-')}"
        if option in needed and path is None:
            raise CliError(f"a {chosen} image needs {flag}", EXIT_USAGE)
        if option not in allowed and path is not None:
            raise CliError(f"a {chosen} image takes no {flag}", EXIT_USAGE)
    _need_files(**given)
    if chosen == "esptool":
        from suture.boardops.esp import EspParts, merge_image

        parts = EspParts(*(path for path in esp_parts.values() if path is not None))
        merged = merge_image(board, parts, out)
        record: dict[str, object] = {
            "board": board.name, "method": chosen, "file": str(out), "size": merged.size,
            "chip": merged.chip, "flash_size": merged.flash_size,
            "bootloader_entry": merged.bootloader_entry, "app_offset": merged.app_offset,
            "app_size": merged.app_size, "app_entry": merged.app_entry}
        line = (f"wrote {out}: {merged.size} bytes for {merged.chip} ({merged.flash_size} "
                f"flash), the app at 0x{merged.app_offset:X} ({merged.app_size} bytes, entry "
                f"0x{merged.app_entry:08X})")
    elif chosen == "uf2":
        assert firmware is not None
        data = write_uf2(board, Images(loader=firmware, stage0=stage0), out).read_bytes()
        record = {"board": board.name, "method": chosen, "file": str(out), "size": len(data),
                  "blocks": len(data) // 512, "family": board.flashing.uf2_family}
        line = (f"wrote {out}: {len(data) // 512} UF2 blocks, family "
                f"{board.flashing.uf2_family}")
    else:
        from suture.boardops.nrf_dfu import build_package

        assert firmware is not None
        package = build_package(board.flashing.nrfutil_dev_type or "", firmware, out)
        record = {"board": board.name, "method": chosen, "file": str(out),
                  "size": len(package.binary), "dev_type": package.dev_type,
                  "crc16": package.crc16, "sd_req": list(package.sd_req)}
        line = (f"wrote {out}: DFU package of {len(package.binary)} bytes, --dev-type "
                f"0x{package.dev_type:04X}, CRC-16 0x{package.crc16:04X}")
    if as_json:
        emit_json(record)
        return
    _out.print(line, highlight=False)


# --- provisioning, deploying, local updates ---------------------------------------------------
Link = Annotated[
    str | None,
    typer.Option(
        "--link",
        help="The update agent's transport, kept in the NVM record net.link: http (the board "
        "has IP), uart:<id>:<baud> (the device link on machine.UART to `suture gateway`), "
        "tty:<path> or qemu. Default: the board definition's (boards/*/board.toml `link`).",
    ),
]


def _check_link(link: str | None) -> str | None:
    from suture.boards.schema import check_link

    if link is None:
        return None
    try:
        return check_link(link)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


Port = Annotated[
    str | None, typer.Option("--port", help="The board's serial port, e.g. /dev/ttyACM0.")
]
DeviceDir = Annotated[
    Path | None,
    typer.Option("--device", help="Device folder of a simulated board (board `sim`)."),
]


@contextlib.contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A byte progress bar on stderr; yields the (done, total) callback."""
    with _step_progress(description) as update:
        yield lambda done, total: update(description, done, total)


@contextlib.contextmanager
def _step_progress(description: str) -> Iterator[Callable[[str, int, int], None]]:
    """A byte progress bar on stderr whose label follows the step; yields the (step, done,
    total) callback the flashing tools report to."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_err, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield update


def _bundle(app: Path) -> bytes:
    if not app.exists():
        raise CliError(f"--app {app}: no such folder or file", EXIT_USAGE)
    try:
        if app.is_dir():
            return build_bundle_from_dir(app)
        return app.read_bytes()
    except BundleError as exc:
        raise BundleError(f"cannot build the application bundle from {app}: {exc}") from None


def _need_files(**paths: Path | None) -> None:
    """Refuse before the board is touched when a file to write to it is missing or unreadable."""
    for option, path in paths.items():
        if path is None:
            continue
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "no such file"
            raise CliError(f"--{option.replace('_', '-')} {path}: {what}", EXIT_USAGE)
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise CliError(f"--{option.replace('_', '-')} {path}: {exc.strerror or exc}",
                           EXIT_USAGE) from None


def _sec1_keys(paths: list[Path]) -> list[bytes]:
    out = []
    for path in paths:
        try:
            key = load_public_key(path)
        except KeyFileError:
            key = load_private_key(path).public_key()
        out.append(public_key_bytes(key))
    return out


def _flash_firmware(
    board: Board,
    *,
    firmware: Path,
    stage0: Path | None,
    method: str | None,
    port: str | None,
    probe: str | None,
) -> None:
    images = Images(loader=firmware, stage0=stage0)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        steps = flash_plan(board, images, method=method, port=port, probe=probe, workdir=workdir)
        for step in steps:
            if isinstance(step, CopyToVolume):
                write_uf2(board, images, step.source)
        if port is not None and (method or board.flashing.method) in ("esptool",
                                                                      "adafruit-nrfutil"):
            probe_port(port)
        with _step_progress(f"flashing {board.name}") as update:
            run_flash_plan(steps, update)
    _out.print(f"flashed {board.name} ({len(steps)} steps)", highlight=False)


def _tls_ca(path: Path | None, scheduler_url: str | None) -> bytes | None:
    """The CA a board pins for its https scheduler, as DER (net.ca); None without --tls-ca.
    An https scheduler URL needs one: the agent refuses https without a pinned CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from suture.formats.identity import MAX_CA_SIZE

    if path is None:
        if scheduler_url and scheduler_url.startswith("https://"):
            raise CliError("an https --scheduler-url needs --tls-ca: the board pins the CA its "
                           "certificate chains to", EXIT_USAGE)
        return None
    data = path.read_bytes()
    try:
        cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except ValueError as exc:
        raise CliError(f"--tls-ca {path}: not an X.509 certificate ({exc})", EXIT_USAGE) from None
    der = cert.public_bytes(Encoding.DER)
    if len(der) > MAX_CA_SIZE:
        raise CliError(f"--tls-ca {path}: {len(der)} bytes, over the {MAX_CA_SIZE} an NVM "
                       "record holds (an EC P-256 CA fits)", EXIT_USAGE)
    return der


def _https_client(ca_der: bytes) -> Any:
    """An HTTP client that trusts only the pinned CA, to register the board."""
    import ssl

    import httpx

    return httpx.Client(timeout=30.0, verify=ssl.create_default_context(cadata=ca_der))


@board_app.command("provision")
def provision_cmd(
    name: Annotated[str, typer.Argument(help="Board name, e.g. `sim` or `rpi-pico`.")],
    app: Annotated[Path, typer.Option(help="Application folder or .bundle file to install.")],
    vendor_key: Annotated[
        list[Path],
        typer.Option(help="Vendor SUIT signing public key PEM the board trusts (repeatable)."),
    ],
    port: Port = None,
    device: DeviceDir = None,
    app_version: Annotated[int, typer.Option(help="Version (SUIT sequence) of --app.")] = 1,
    vendor_id: Annotated[str, typer.Option(help="SUIT vendor id (UUID).")] = str(VENDOR_ID),
    class_id: Annotated[str, typer.Option(help="SUIT class id (UUID).")] = str(CLASS_ID),
    device_id: Annotated[
        str | None, typer.Option(help="Device id (default: BOARD-<8 random hex digits>).")
    ] = None,
    scheduler_url: Annotated[
        str | None, typer.Option(help="Scheduler base URL: register the device there.")
    ] = None,
    scheduler_key: Annotated[
        list[Path] | None, typer.Option(help="Scheduler schedule-signing public key PEM.")
    ] = None,
    operator_token: Annotated[
        str | None,
        typer.Option(envvar="SUTURE_OPERATOR_TOKEN", help="Scheduler operator token."),
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option(help="Scheduler device group (repeatable).")
    ] = None,
    firmware: Annotated[
        Path | None, typer.Option(help="Loader image (MicroPython firmware) to flash first.")
    ] = None,
    stage0: Annotated[Path | None, typer.Option(help="stage0 image to flash first.")] = None,
    method: Annotated[
        str | None, typer.Option(help="Flashing method (default: the board's).")
    ] = None,
    probe: Annotated[str | None, typer.Option(help="Debug probe unique id (pyocd).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing device identity.")
    ] = False,
    link: Link = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(help="CA certificate (PEM or DER) the https scheduler's certificate chains "
                          "to: pinned in the board (net.ca) and used to reach the scheduler."),
    ] = None,
    kek: Annotated[
        list[str] | None,
        typer.Option("--kek", metavar="FILE[#KID]",
                     help="Key-encryption key (the file's raw 16 or 32 bytes: A128KW, A256KW) "
                          "of the device or its group, that opens encrypted releases "
                          "(enc.keys); repeatable. On a provisioned board it replaces the "
                          "keys (a rotation: give the new and the old).")] = None,
    decryption_key: Annotated[
        list[str] | None,
        typer.Option("--decryption-key", metavar="PEM[#KID]",
                     help="P-256 private key PEM that opens releases encrypted for its public "
                          "key (ECDH-ES+AES-KW); repeatable, with --kek.")] = None,
    require_hospital_manifest: Annotated[
        bool,
        typer.Option("--require-hospital-manifest",
                     help="Install a release only under the hospital's manifest over the "
                          "vendor's (NVM trust.hospital; the scheduler names the rollout's "
                          "hospital envelope in this device's schedules).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Provision a board: firmware, application, identity, enrollment.

    Flashes stage0 and the firmware (with --firmware), installs the
    application, writes the device identity (device key, trust anchors,
    scheduler URL and credential) and registers the device with the scheduler
    (with --scheduler-url), and the agent's transport (--link, else the board's
    default), and the keys that open encrypted releases (--kek,
    --decryption-key). Idempotent: a board that already has an identity is
    left as it is unless --force (--link and the decryption keys are still
    written).
    """
    link = _check_link(link)
    _need_files(firmware=firmware, stage0=stage0)
    if stage0 is not None and firmware is None:
        raise CliError("--stage0 is flashed with the firmware: give --firmware too", EXIT_USAGE)
    board = load_board(name)
    bundle = _bundle(app)
    try:
        vendor_uuid, class_uuid = uuid.UUID(vendor_id), uuid.UUID(class_id)
    except ValueError as exc:
        raise CliError(f"--vendor-id/--class-id must be UUIDs: {exc}", EXIT_USAGE) from None
    trusted = _sec1_keys(vendor_key)
    ca_der = _tls_ca(tls_ca, scheduler_url)
    scheduler = None
    if scheduler_url:
        if not operator_token:
            raise CliError("--scheduler-url needs --operator-token (or SUTURE_OPERATOR_TOKEN)",
                           EXIT_USAGE)
        scheduler = SchedulerClient(scheduler_url, operator_token,
                                    client=_https_client(ca_der) if ca_der else None)
    if firmware is not None:
        _flash_firmware(board, firmware=firmware, stage0=stage0, method=method, port=port,
                        probe=probe)
    identity = DeviceIdentity(vendor_id=vendor_uuid.bytes, class_id=class_uuid.bytes,
                              keys=tuple(trusted))
    request = ProvisionRequest(
        app_bundle=bundle,
        app_version=app_version,
        vendor_keys=trusted,
        vendor_id=vendor_uuid,
        class_id=class_uuid,
        scheduler_url=scheduler_url,
        scheduler_keys=_sec1_keys(scheduler_key or []),
        device_id=device_id,
        groups=group or [],
        force=force,
        link=link,
        tls_ca=ca_der,
        decryption_keys=_decryption_keys(kek, decryption_key),
        require_hospital_manifest=require_hospital_manifest,
    )
    with (
        open_board(board, port=port, device_dir=device, new_identity=identity) as session,
        _progress(f"installing the application on {board.name}") as update,
    ):
        result = provision(session, request, scheduler=scheduler, progress=update)
        if not result.changed and link is not None:
            set_link(session, link)
        if not result.changed and request.decryption_keys is not None:
            set_decryption_keys(session, request.decryption_keys)
    if as_json:
        emit_json({"board": board.name, "device_id": result.device_id,
                   "changed": result.changed,
                   "installed_version": result.installed_version if result.changed else None,
                   "device_key_id": result.device_key_id if result.changed else None,
                   "link": link or (board.default_link if result.changed else None),
                   "decryption_keys": len(kek or []) + len(decryption_key or []),
                   "registered_with": scheduler_url if result.credential is not None else None,
                   "credential_fingerprint": result.credential.fingerprint
                   if result.credential is not None else None})
        return
    if not result.changed:
        if link is not None:
            _out.print(f"{board.name} is already provisioned as {result.device_id}; its "
                       f"transport is now {link}", highlight=False)
            return
        _out.print(f"{board.name} is already provisioned as {result.device_id}: nothing changed "
                   "(--force replaces its identity)", highlight=False)
        return
    _out.print(f"provisioned {result.device_id} on {board.name}: application version "
               f"{result.installed_version}, device key {result.device_key_id}, transport "
               f"{link or board.default_link}", highlight=False)
    if result.credential is not None:
        _out.print(f"registered with {scheduler_url} (credential "
                   f"{result.credential.fingerprint[:16]})", highlight=False)


def _decryption_keys(kek: list[str] | None, ecdh: list[str] | None) -> bytes | None:
    """The enc.keys record of --kek and --decryption-key, or None when neither is given."""
    if not kek and not ecdh:
        return None
    entries = []
    for spec in kek or []:
        key = suit_ext.symmetric_key(spec)
        entries.append((ENC_KIND_KEK, key.kid or b"", key.key))
    for spec in ecdh or []:
        private = suit_ext.ecdh_key(spec)
        scalar = private.private_key.private_numbers().private_value.to_bytes(32, "big")
        entries.append((ENC_KIND_ECDH, private.kid or b"", scalar))
    try:
        return encryption_keys(entries)
    except EnrolmentError as exc:
        raise CliError(f"decryption keys: {exc}", EXIT_USAGE) from None


@board_app.command("deploy")
def deploy_cmd(
    name: Annotated[str, typer.Argument(help="Board name.")],
    source: Annotated[Path, typer.Argument(help="Application folder to compile and copy.")],
    port: Port = None,
    device: DeviceDir = None,
    link: Link = None,
) -> None:
    """The developer's loop: compile, copy what changed, reset, show the log.

    Compiles the folder to .mpy (main.py and boot.py stay source), copies only
    the files that differ from the board's into its application folder, resets
    the board and prints what the application logs. The agent's transport is
    set first: --link, or the board's default when the board has none yet.
    """
    link = _check_link(link)
    board = load_board(name)
    files = compile_tree(source)
    with open_board(board, port=port, device_dir=device) as session, _progress(
        f"copying to {board.name}"
    ) as update:
        written = set_link(session, link)
        result = deploy(session, files, progress=update)
    if written is not None:
        _out.print(f"transport: {written}", highlight=False)
    _out.print(f"copied {len(result.copied)} files, {len(result.unchanged)} unchanged; "
               f"board booted ({result.boot_state})", highlight=False)
    for path in result.copied:
        _out.print(f"  + {path}", highlight=False)
    if result.log:
        _out.print("--- log ---", highlight=False)
        _out.print(result.log, highlight=False, markup=False)


LOADER_MANIFEST = Path(__file__).resolve().parents[3] / "loader" / "manifest.py"


@board_app.command("firmware-config")
def firmware_config_cmd(
    name: Annotated[str, typer.Argument(help="Board name, e.g. `rpi-pico`.")],
    vendor_key: Annotated[
        list[Path],
        typer.Option(help="Vendor SUIT signing public key PEM the loader trusts (repeatable)."),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder to write board_config.py and manifest.py into.")
    ],
    vendor_id: Annotated[str, typer.Option(help="SUIT vendor id (UUID).")] = str(VENDOR_ID),
    class_id: Annotated[str, typer.Option(help="SUIT class id (UUID).")] = str(CLASS_ID),
    max_trial_boots: Annotated[
        int, typer.Option(help="Boots a new application gets to confirm before a revert.")
    ] = 3,
    wdt_ms: Annotated[int, typer.Option(help="Watchdog timeout in milliseconds.")] = 8000,
    mount: Annotated[
        str | None,
        typer.Option(help="Where the port mounts its filesystem (default: the port's own)."),
    ] = None,
    boards: BoardsDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate the loader's frozen board configuration for a real board.

    Writes OUT/board_config.py (flash map, SPI wiring, trusted vendor keys and
    ids, from the board definition) and OUT/manifest.py, which freezes it with
    the loader package. Build MicroPython with it, e.g.
    `make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=$PWD/OUT/manifest.py`.
    """
    board = load_board(name, boards)
    ids = {}
    for what, text in (("vendor id", vendor_id), ("class id", class_id)):
        try:
            ids[what] = uuid.UUID(text)
        except ValueError:
            raise CliError(f"the {what} {text!r} is not a UUID", EXIT_USAGE) from None
    keys = _sec1_keys(vendor_key)
    trust = LoaderTrust(vendor_keys=keys, vendor_id=ids["vendor id"], class_id=ids["class id"],
                        max_trial_boots=max_trial_boots, wdt_ms=wdt_ms, mount=mount)
    written = write_firmware_dir(board, trust, out, LOADER_MANIFEST)
    if as_json:
        emit_json({"board": board.name, "files": [str(path) for path in written],
                   "frozen_manifest": str(written[1].resolve())})
        return
    for path in written:
        _out.print(f"wrote {path}", highlight=False)
    _out.print(f"build: FROZEN_MANIFEST={written[1].resolve()}", highlight=False)


@board_app.command("update")
def update_cmd(
    name: Annotated[str, typer.Argument(help="Board name.")],
    envelope: Annotated[Path, typer.Argument(help="Signed SUIT envelope (.suit).")],
    payload: Annotated[Path, typer.Argument(help="The payload the envelope describes.")],
    port: Port = None,
    device: DeviceDir = None,
    install: Annotated[
        bool, typer.Option("--install/--stage-only", help="Reset to install once staged.")
    ] = True,
    link: Annotated[
        str, typer.Option("--link", help="serial (the REPL) or swd (a debug probe, pyocd).")
    ] = "serial",
    probe: Annotated[
        str | None,
        typer.Option("--probe", help="Debug probe unique id (implies --link swd)."),
    ] = None,
) -> None:
    """Apply a signed update over the local link (degraded mode).

    The board's loader verifies the envelope and the payload exactly as for a
    network update, stages it, and installs it at the reset that follows.
    Nothing unsigned is installed. With --link swd (or --probe ID) the update
    goes through a control block in the board's RAM over a debug probe.
    """
    if link not in ("serial", "swd"):
        raise CliError(f"--link must be serial or swd, not {link!r}", EXIT_USAGE)
    board = load_board(name)
    env, data = envelope.read_bytes(), payload.read_bytes()
    if link == "swd" or probe is not None:
        with _progress(f"staging on {board.name} over SWD") as update:
            if board.flashing.method == "sim":
                with open_board(board, device_dir=device) as session:
                    result = sim_swd_update(session, env, data, install=install,
                                            progress=update)
            else:
                result = probe_update(board, env, data, probe_id=probe, install=install,
                                      progress=update)
    else:
        with open_board(board, port=port, device_dir=device) as session, _progress(
            f"staging on {board.name}"
        ) as update:
            result = local_update(session, env, data, install=install, progress=update)
    if not result.boot_state:
        _out.print(f"staged version {result.staged_version}; the board was reset "
                   f"through the probe to install it", highlight=False)
        return
    _out.print(f"staged version {result.staged_version}; board state {result.boot_state}, "
               f"installed version {result.status.get('installed_version')}", highlight=False)


ERASED_ROLES = ("journal", "nvm", "staging", "backup")


def _where(board: Board, port: str | None, device: Path | None) -> str:
    if device is not None:
        return f"{board.name} in {device}"
    return f"{board.name} at {port}" if port else board.name


@board_app.command("decommission")
def decommission_cmd(
    name: Annotated[str, typer.Argument(help="Board name.")],
    port: Port = None,
    device: DeviceDir = None,
    scheduler_url: Annotated[
        str | None, typer.Option(help="Scheduler base URL to report the decommissioning to.")
    ] = None,
    operator_token: Annotated[
        str | None,
        typer.Option(envvar="SUTURE_OPERATOR_TOKEN", help="Scheduler operator token."),
    ] = None,
    record_key: Annotated[
        Path | None,
        typer.Option(help="The operator's private key (PEM, ES256 or EdDSA) that signs the "
                     "decommission record."),
    ] = None,
    record_out: Annotated[
        Path | None, typer.Option(help="Write the signed decommission record (COSE_Sign1) here.")
    ] = None,
    yes: YesOpt = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Erase the application, its data and the device's identity, check the erase, and
    record it.

    Deletes every file of the application filesystem and overwrites its free space, erases
    the journal, NVM (with the device key and credential), staging and backup regions, and
    accepts the erase only when the board reads all of it back as erased. With --record-key,
    signs a decommission record (written to --record-out); with --scheduler-url, marks the
    device decommissioned at the scheduler with the record (it revokes the credential and
    never targets the device again). The scheduler is asked first: if it cannot be reached,
    nothing is erased.
    Asks first (--yes: do not ask; without a terminal nothing is done without it);
    --dry-run says what would be erased and reported, without touching the board.
    """
    board = load_board(name)
    if scheduler_url and not operator_token:
        raise CliError("--scheduler-url needs --operator-token (or SUTURE_OPERATOR_TOKEN)",
                       EXIT_USAGE)
    if record_out is not None and record_key is None:
        raise CliError("--record-out needs --record-key (the key that signs the record)",
                       EXIT_USAGE)
    signing_key = None
    if record_key is not None:
        try:
            signing_key = load_private_key(record_key)
        except KeyFileError as exc:
            raise CliError(f"--record-key: {exc}", EXIT_USAGE) from None
    where = _where(board, port, device)
    regions = {r.role: r.size for r in board.external_flash.regions}
    if dry_run:
        erased = ", ".join(f"{role} ({regions[role] // 1024} KiB)" for role in ERASED_ROLES
                           if role in regions)
        device_id = "the board's device id"
        if board.flashing.method == "sim" and device is not None:
            device_id = str(read_sim_status(device).get("device_id") or "(no device id)")
        if scheduler_url:
            _out.print(f"would report {device_id} as decommissioned to {scheduler_url} (marked "
                       "decommissioned, its credential revoked)", highlight=False)
        _out.print(f"would erase the application filesystem and {erased} of {where}",
                   highlight=False)
        _out.print("dry run: nothing was changed", highlight=False)
        return
    confirm(f"Erase the application, its data and the identity of {where} (its keys, "
            "credential, staged updates and journal)?", yes=yes)
    scheduler = SchedulerClient(scheduler_url, operator_token) if scheduler_url and \
        operator_token else None
    with open_board(board, port=port, device_dir=device) as session:
        result = decommission(session, reboot=session.reset, scheduler=scheduler,
                              signing_key=signing_key, record_out=record_out)
    report = result.report
    _out.print(f"removed {report.fs_files_removed} file(s) ({report.fs_bytes_removed} bytes) "
               f"and overwrote {report.fs_bytes_scrubbed // 1024} KiB of free space in the "
               "application filesystem", highlight=False)
    erased = ", ".join(f"{r.name} ({r.size // 1024} KiB)" for r in report.regions)
    _out.print(f"erased {erased}", highlight=False)
    _out.print(f"read back: {report.bytes_erased} bytes erased (all 0xFF), no file left, "
               "nothing installed", highlight=False)
    if record_out is not None:
        _out.print(f"decommission record signed and written to {record_out}", highlight=False)
    if result.reported:
        _out.print(f"reported {result.device_id} as decommissioned to {scheduler_url}",
                   highlight=False)
    elif scheduler_url:
        _out.print(f"{result.device_id} was already decommissioned at {scheduler_url}",
                   highlight=False)


def _status_lines(answer: dict[str, Any]) -> list[str]:
    component = {0: "application", 1: "loader", 2: "NVM"}.get(answer.get("component", 0), "?")
    journal = ", ".join(f"#{seq} {state} v{version}" for seq, state, version in
                        answer.get("journal", [])) or "(empty)"
    backup = answer.get("backup_version")
    return [
        f"state        {answer.get('state')} ({component}, version {answer.get('version')}, "
        f"boot {answer.get('boot_count')})",
        f"installed    version {answer.get('installed_version')} "
        f"(sha256 {str(answer.get('installed_digest', ''))[:16]}…)",
        f"backup       {'version ' + str(backup) if backup is not None else 'none'}",
        f"device id    {answer.get('device_id') or '(none)'}",
        f"link         {answer.get('link') or '(none)'}",
        f"nvm keys     {' '.join(answer.get('nvm_keys', [])) or '(none)'}",
        f"journal      {journal}",
    ]


@board_app.command("status")
def status_cmd(
    name: Annotated[str, typer.Argument(help="Board name.")],
    port: Port = None,
    device: DeviceDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the board's update status; --json for every field.

    Journal state and records, installed and backup versions, device id, the
    agent's transport: the fields of the status protocol (docs/hil.md). The
    board is not rebooted: a simulated board is read from its flash images,
    a real board answers over its REPL.
    """
    board = load_board(name)
    if board.flashing.method == "sim":
        if device is None:
            raise CliError(f"board {board.name} is simulated: give --device DIR", EXIT_USAGE)
        answer = read_sim_status(device)
    else:
        with open_board(board, port=port, device_dir=device) as session:
            if session.boot_state == "BLANK":
                raise CliError(f"{board.name} is blank: provision it first")
            answer = device_ops.status(session.repl)
    if as_json:
        emit_json(answer)
        return
    for line in _status_lines(answer):
        _out.print(line, highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Attach the `board` command group to the root app."""
    app.add_typer(board_app, name="board")
