"""How each board is flashed: the steps, with the addresses taken from the board's flash map.

:func:`flash_plan` turns a board definition and the images to write (stage0, the loader image)
into steps. Nothing here runs anything: :mod:`suture.boardops.flash_runner` runs the steps (with
a progress bar), driving the pinned tools through their Python APIs, and tests check the steps.

Methods:

- ``pyocd``: an SWD probe; :class:`ProbeWrite`, one per image at its address (pyocd's
  ``FileProgrammer``, :mod:`suture.boardops.probe`).
- ``adafruit-nrfutil``: the Adafruit nRF52 bootloader's serial DFU: :class:`DfuPackageBuild`
  (``dfu genpkg``'s package) then :class:`SerialDfu` (``dfu serial``), which writes the
  bootloader's application area: the board's recovery path (:mod:`suture.boardops.nrf_dfu`).
- ``uf2``: the UF2 bootloader's USB drive; the images are converted to one UF2 file
  (:func:`to_uf2`) and copied onto the drive (:class:`CopyToVolume`).
- ``dfu-util``: the STM32 system bootloader's USB DFU (BOOT0 high), ``-s ADDR[:leave]``: a
  :class:`FlashCommand`, since dfu-util is a C program.
- ``esptool``: :class:`EsptoolWrite` over the USB serial port (esptool's ``write_flash``,
  :mod:`suture.boardops.esp`).
- ``sim`` / ``qemu``: nothing to flash; the simulator writes its flash files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from suture.boardops.errors import BoardOpsError
from suture.boards.schema import Board
from suture.errors import UnreachableError

# STM32 system bootloader's USB DFU identity (VID:PID).
STM32_DFU_USB_ID = "0483:df11"
# Where the UF2 bootloaders of the supported boards mount their drive on Linux.
UF2_MOUNT_ROOTS = (Path("/media"), Path("/run/media"), Path("/mnt"))


class FlashPlanError(BoardOpsError):
    """The board cannot be flashed with the requested method or images."""


class FlashToolError(FlashPlanError):
    """A board tool (esptool, adafruit-nrfutil, pyocd, dfu-util) failed; the message quotes it."""


class FlashUnreachableError(FlashPlanError, UnreachableError):
    """Nothing answers where the tool looks: no serial port, no debug probe, a silent chip."""


@dataclass(frozen=True)
class FlashCommand:
    """One program to run: ``argv`` exactly as passed to the OS (no shell)."""

    description: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class ProbeWrite:
    """Write ``image`` at ``address`` through a debug probe (pyocd ``FileProgrammer``).

    ``target`` is pyocd's target (from ``pack`` when pyocd does not build it in); ``probe`` the
    probe's unique id (None: the one probe connected)."""

    description: str
    target: str
    pack: str | None
    probe: str | None
    address: int
    image: Path


@dataclass(frozen=True)
class EsptoolWrite:
    """Write each ``(address, image)`` over the serial ``port`` (esptool ``write_flash``), the
    chip's flash settings kept, at ``baud`` once esptool's stub runs."""

    description: str
    chip: str
    port: str
    baud: int
    writes: tuple[tuple[int, Path], ...]


@dataclass(frozen=True)
class DfuPackageBuild:
    """Build the serial-DFU package of ``image`` (``adafruit-nrfutil dfu genpkg``)."""

    description: str
    dev_type: str
    image: Path
    package: Path


@dataclass(frozen=True)
class SerialDfu:
    """Send ``package`` through the Adafruit bootloader on ``port`` (``dfu serial``)."""

    description: str
    package: Path
    port: str
    baud: int


@dataclass(frozen=True)
class CopyToVolume:
    """Copy ``source`` onto the USB drive labelled ``volume`` (a UF2 bootloader)."""

    description: str
    source: Path
    volume: str


FlashStep = FlashCommand | CopyToVolume | ProbeWrite | EsptoolWrite | DfuPackageBuild | SerialDfu


@dataclass(frozen=True)
class Images:
    """The images to write: stage0 (boards with a stage0) and the loader image (MicroPython
    firmware with the frozen loader), both raw binaries linked for their region's address."""

    loader: Path
    stage0: Path | None = None


def region_address(board: Board, kind: str) -> int:
    """The absolute address of the board's first internal region of ``kind``."""
    for region in board.internal_flash.regions:
        if region.kind == kind:
            return board.internal_flash.base + region.offset
    raise FlashPlanError(f"board {board.name} has no internal region of kind {kind!r}")


def _writes(board: Board, images: Images) -> list[tuple[str, int, Path]]:
    """(what, address, file) for each image to write, stage0 first."""
    writes: list[tuple[str, int, Path]] = []
    if board.stage0:
        if images.stage0 is None:
            raise FlashPlanError(f"board {board.name} needs a stage0 image (--stage0 FILE)")
        writes.append(("stage0", region_address(board, "stage0"), images.stage0))
    elif images.stage0 is not None:
        raise FlashPlanError(f"board {board.name} has no stage0: {board.stage0_note}")
    if board.flashing.method == "esptool":
        # MicroPython's ESP32-S3 firmware .bin holds the IDF bootloader, partition table and
        # app: it is written at flash offset 0.
        writes.append(("MicroPython firmware", 0, images.loader))
    else:
        writes.append(("loader image", region_address(board, "loader"), images.loader))
    return writes


def _hex(value: int) -> str:
    return f"0x{value:08x}"


def _pyocd(board: Board, writes: list[tuple[str, int, Path]], probe: str | None) -> list[FlashStep]:
    target = board.flashing.pyocd_target
    if target is None:
        raise FlashPlanError(f"board {board.name} has no flashing.pyocd_target")
    return [
        ProbeWrite(f"write {what} at {_hex(addr)} over SWD", target, board.flashing.pyocd_pack,
                   probe, addr, path)
        for what, addr, path in writes
    ]


def _nrfutil(
    board: Board, writes: list[tuple[str, int, Path]], port: str | None, workdir: Path
) -> list[FlashStep]:
    if port is None:
        raise FlashPlanError("adafruit-nrfutil writes over the serial port: give --port")
    if board.stage0:
        # The bootloader's DFU writes its application area only: it cannot write 0x0.
        raise FlashPlanError(
            f"adafruit-nrfutil cannot write stage0 at {_hex(region_address(board, 'stage0'))} "
            f"on {board.name}: provision over SWD (--method pyocd)"
        )
    what, _addr, image = writes[-1]
    dev_type = board.flashing.nrfutil_dev_type
    if dev_type is None:
        raise FlashPlanError(f"board {board.name} has no flashing.nrfutil_dev_type")
    package = workdir / f"{image.stem}-dfu.zip"
    return [
        DfuPackageBuild(f"package the {what} for serial DFU", dev_type, image, package),
        SerialDfu(f"write the {what} through the bootloader on {port}", package, port,
                  board.flashing.baud),
    ]


def _uf2(board: Board, writes: list[tuple[str, int, Path]], workdir: Path) -> list[FlashStep]:
    family, volume = board.flashing.uf2_family, board.flashing.uf2_volume
    if family is None or volume is None:
        raise FlashPlanError(f"board {board.name} needs flashing.uf2_family and uf2_volume")
    out = workdir / f"{board.name}.uf2"
    return [CopyToVolume(f"copy {out.name} onto the {volume} drive", out, volume)]


def _dfu_util(board: Board, writes: list[tuple[str, int, Path]]) -> list[FlashStep]:
    alt = board.flashing.dfu_alt if board.flashing.dfu_alt is not None else 0
    steps: list[FlashStep] = []
    for index, (what, addr, path) in enumerate(writes):
        leave = ":leave" if index == len(writes) - 1 else ""
        steps.append(
            FlashCommand(
                f"write {what} at {_hex(addr)} over USB DFU",
                ("dfu-util", "--alt", str(alt), "--device", STM32_DFU_USB_ID,
                 "--dfuse-address", f"{_hex(addr)}{leave}", "--download", str(path)),
            )
        )
    return steps


def _esptool(
    board: Board, writes: list[tuple[str, int, Path]], port: str | None
) -> list[FlashStep]:
    if port is None:
        raise FlashPlanError("esptool writes over the serial port: give --port")
    chip = board.flashing.esptool_chip
    if chip is None:
        raise FlashPlanError(f"board {board.name} has no flashing.esptool_chip")
    return [
        EsptoolWrite(f"write the MicroPython firmware over {port}", chip, port,
                     board.flashing.baud, tuple((addr, path) for _what, addr, path in writes))
    ]


def flash_plan(
    board: Board,
    images: Images,
    *,
    method: str | None = None,
    port: str | None = None,
    probe: str | None = None,
    workdir: Path,
) -> list[FlashStep]:
    """The steps that write ``images`` onto ``board`` with ``method`` (default: the board's).

    ``port`` is the serial port (esptool, adafruit-nrfutil), ``probe`` a debug probe's unique id
    (pyocd ``--uid``), ``workdir`` where intermediate files (DFU package, UF2) go.
    """
    chosen = method or board.flashing.method
    allowed = board.flashing.methods
    if chosen not in allowed:
        raise FlashPlanError(
            f"board {board.name} is not flashed with {chosen!r}; it supports {', '.join(allowed)}"
        )
    if chosen in ("sim", "qemu"):
        return []
    writes = _writes(board, images)
    if chosen == "pyocd":
        return _pyocd(board, writes, probe)
    if chosen == "adafruit-nrfutil":
        return _nrfutil(board, writes, port, workdir)
    if chosen == "uf2":
        return _uf2(board, writes, workdir)
    if chosen == "dfu-util":
        return _dfu_util(board, writes)
    if chosen == "esptool":
        return _esptool(board, writes, port)
    raise FlashPlanError(f"unknown flashing method {chosen!r}")


# --- UF2 -----------------------------------------------------------------------------------
# A UF2 file is a sequence of 512-byte blocks, each carrying up to 476 bytes (256 in practice)
# for one target address, framed by three magic numbers; flag 0x2000 says word 7 is a family id.
UF2_MAGIC_START0 = 0x0A324655
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID = 0x00002000
UF2_PAYLOAD = 256
UF2_BLOCK = 512


def to_uf2(chunks: list[tuple[int, bytes]], family_id: int) -> bytes:
    """A UF2 file writing each ``(address, data)`` chunk; addresses must be 256-byte aligned."""
    pieces: list[tuple[int, bytes]] = []
    for address, data in chunks:
        if address % UF2_PAYLOAD:
            raise FlashPlanError(f"UF2 chunk at 0x{address:08x} is not 256-byte aligned")
        for offset in range(0, len(data), UF2_PAYLOAD):
            piece = data[offset : offset + UF2_PAYLOAD]
            pieces.append((address + offset, piece.ljust(UF2_PAYLOAD, b"\xff")))
    out = bytearray()
    for number, (address, payload) in enumerate(pieces):
        header = struct.pack(
            "<8I",
            UF2_MAGIC_START0,
            UF2_MAGIC_START1,
            UF2_FLAG_FAMILY_ID,
            address,
            UF2_PAYLOAD,
            number,
            len(pieces),
            family_id,
        )
        out += header + payload.ljust(UF2_BLOCK - 32 - 4, b"\x00")
        out += struct.pack("<I", UF2_MAGIC_END)
    return bytes(out)


def write_uf2(board: Board, images: Images, out: Path) -> Path:
    """Write the UF2 file holding every image of ``images`` for ``board``; returns ``out``."""
    family = board.flashing.uf2_family
    if family is None:
        raise FlashPlanError(f"board {board.name} has no flashing.uf2_family")
    chunks = [(addr, path.read_bytes()) for _what, addr, path in _writes(board, images)]
    out.write_bytes(to_uf2(chunks, int(family, 16)))
    return out


def find_volume(label: str, roots: tuple[Path, ...] = UF2_MOUNT_ROOTS) -> Path | None:
    """The mount point of the USB drive labelled ``label`` (``/media/<user>/<label>`` ...)."""
    for root in roots:
        if not root.is_dir():
            continue
        for candidate in (root / label, *root.glob(f"*/{label}")):
            if candidate.is_dir():
                return candidate
    return None
