"""The frozen ``board_config`` module that a real board's loader reads (``loader/hal/mcu.py``),
rendered from the board's definition, and the freeze manifest that puts it beside the loader.

The loader on a board takes its flash map, its SPI wiring and its trust anchors from this module,
frozen into the MicroPython firmware with the ``loader`` package: they cannot change without a
new signed loader image. ``write_firmware_dir`` writes both files into a folder; MicroPython's
build then takes ``FROZEN_MANIFEST=<folder>/manifest.py`` (docs/deploy-to-a-board.md).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from suture.boards.check import check_board
from suture.boards.schema import Board, InternalFlash
from suture.firmware.errors import FirmwareError

# Where each MicroPython port mounts the internal-flash filesystem by default.
DEFAULT_MOUNT: dict[str, str] = {
    "rp2": "/", "esp32": "/", "stm32": "/flash", "nrf": "/flash", "qemu": "/flash",
}
# QEMU's mps2 machines: stage0's power-cut control block (docs/stage0.md, "QEMU").
QEMU_CUT_WORD = 0x20100000
# Ports whose hardware SPI has fixed pins: machine.SPI(id) takes no pin arguments there.
FIXED_PIN_SPI_PORTS: frozenset[str] = frozenset({"stm32"})
# The largest watchdog timeout every supported port accepts (the RP2040's is 8.3 s).
DEFAULT_WDT_MS = 8000

_PIN_NUMBER = {
    "rp2": re.compile(r"^GP(\d+)$"),
    "esp32": re.compile(r"^(?:GPIO|IO)(\d+)$"),
}
_NRF_PIN = re.compile(r"^P([01])\.(\d+)$")


class FirmwareConfigError(FirmwareError, ValueError):
    """The board cannot get a loader configuration; the message says why."""


@dataclass(frozen=True)
class LoaderTrust:
    """What the loader trusts and how it behaves, frozen with it."""

    vendor_keys: Sequence[bytes]  # 65-byte SEC1 P-256 points (SUIT signing keys)
    vendor_id: uuid.UUID
    class_id: uuid.UUID
    max_trial_boots: int = 3
    wdt_ms: int = DEFAULT_WDT_MS
    mount: str | None = None  # default: the port's (DEFAULT_MOUNT)


def machine_pin(port: str, name: str) -> int | str:
    """The argument ``machine.Pin`` takes on ``port`` for the pin a definition calls ``name``:
    a GPIO number where the name encodes one (rp2 ``GP17``, esp32 ``GPIO10``, nRF ``P0.20`` =
    20, ``P1.02`` = 34), the board's own pin name on stm32 (``X5``)."""
    if port == "stm32":
        return name
    if port == "nrf":
        m = _NRF_PIN.match(name)
        if m:
            return 32 * int(m.group(1)) + int(m.group(2))
    elif port in _PIN_NUMBER:
        m = _PIN_NUMBER[port].match(name)
        if m:
            return int(m.group(1))
    raise FirmwareConfigError(f"pin name {name!r} is not understood for the {port} port")


def _port(board: Board) -> str:
    """The board's MicroPython port, once the board is fit for a loader configuration."""
    mp = board.micropython
    if mp is None or mp.port not in DEFAULT_MOUNT:
        port = "none" if mp is None else mp.port
        raise FirmwareConfigError(
            f"board {board.name!r} runs no MicroPython port with a real-board HAL (port: {port}; "
            f"supported: {', '.join(sorted(DEFAULT_MOUNT))})"
        )
    if mp.port == "qemu":
        if board.qemu is None:
            raise FirmwareConfigError(f"board {board.name!r} runs the qemu port but has no [qemu]")
    elif board.external_flash.spi is None:
        raise FirmwareConfigError(
            f"board {board.name!r} does not say how its external flash is wired "
            "([external_flash.spi])"
        )
    problems = check_board(board)
    if problems:
        raise FirmwareConfigError(
            "the board definition is not sound:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return mp.port


def _spi(port: str, board: Board) -> tuple[int, tuple[int | str, ...]]:
    spi = board.external_flash.spi
    assert spi is not None
    if isinstance(spi.bus, int):
        bus = spi.bus
    elif spi.bus == "qspi" and port == "nrf":
        # The QSPI chip's pins driven as plain SPI (IO0 = MOSI, IO1 = MISO) by SPI instance 0.
        bus = 0
    else:
        raise FirmwareConfigError(f"SPI bus {spi.bus!r} is not understood for the {port} port")
    if port in FIXED_PIN_SPI_PORTS:
        return bus, ()
    return bus, tuple(machine_pin(port, p) for p in (spi.sck, spi.mosi, spi.miso))


def render_board_config(board: Board, trust: LoaderTrust) -> str:
    """The text of ``board_config.py`` for ``board`` (see loader/hal/mcu.py for its fields)."""
    port = _port(board)
    for key in trust.vendor_keys:
        if len(key) != 65 or key[0] != 4:
            raise FirmwareConfigError("a vendor key is not a 65-byte uncompressed P-256 point")
    if not trust.vendor_keys:
        raise FirmwareConfigError("the loader needs at least one vendor key")
    if not 1 <= trust.max_trial_boots <= 255:
        raise FirmwareConfigError("max trial boots must be 1..255")
    if trust.wdt_ms <= 0:
        raise FirmwareConfigError("the watchdog timeout must be positive")
    ext = board.external_flash
    regions = {r.role: (r.offset, r.size) for r in ext.regions if r.role != "spare"}
    lines = [
        f"# board_config for {board.name}: generated by `suture board firmware-config` from",
        f"# boards/{board.name}/board.toml. Frozen with the loader; do not edit.",
        f"NAME = {board.name!r}",
        *(_qemu_lines(board) if port == "qemu" else _spi_lines(port, board)),
        f"LOADER_ADDRESS = {_loader_address(board):#x}  # the loader slot's body (vector table)",
        f"EXT_SIZE = {ext.size:#x}",
        f"EXT_SECTOR = {ext.sector}",
        f"EXT_PAGE = {ext.page}",
        "EXT_REGIONS = {",
        *(f"    {role!r}: ({off:#x}, {size:#x})," for role, (off, size) in sorted(regions.items())),
        "}",
        f"VENDOR_ID = bytes.fromhex({trust.vendor_id.hex!r})  # {trust.vendor_id}",
        f"CLASS_ID = bytes.fromhex({trust.class_id.hex!r})  # {trust.class_id}",
        'DEVICE_ID = b""  # the device identity is written into the NVM store at provisioning',
        "KEYS = [",
        *(f"    bytes.fromhex({key.hex()!r})," for key in trust.vendor_keys),
        "]",
        f"MAX_TRIAL_BOOTS = {trust.max_trial_boots}",
        f"MOUNT = {trust.mount or DEFAULT_MOUNT[port]!r}",
        f"WDT_MS = {trust.wdt_ms}",
        "",
    ]
    return "\n".join(lines)


def _spi_lines(port: str, board: Board) -> list[str]:
    spi = board.external_flash.spi
    assert spi is not None
    bus, pins = _spi(port, board)
    return [
        f"SPI_ID = {bus!r}",
        f"SPI_BAUD = {spi.baudrate}",
        f"SPI_CS = {machine_pin(port, spi.cs)!r}",
        f"SPI_PINS = {pins!r}  # (sck, mosi, miso); () where the bus has fixed pins",
    ]


def _qemu_lines(board: Board) -> list[str]:
    """Where the QEMU board keeps its flash devices in memory (loader/hal/qemu.py)."""
    assert board.qemu is not None
    internal = board.internal_flash
    fs = [r for r in internal.regions if r.kind == "littlefs"]
    if len(fs) != 1:
        raise FirmwareConfigError(f"board {board.name!r} has no littlefs region for the "
                                  "application: stage0 runs there, the firmware does not")
    return [
        f"INT_BASE = {internal.base:#x}",
        f"INT_SIZE = {internal.size:#x}",
        f"FS_REGION = ({fs[0].offset:#x}, {fs[0].size:#x})  # littlefs on the internal flash",
        *_loader_region_lines(internal),
        f"EXT_BASE = {board.qemu.external_base:#x}",
        f"CUT_WORD = {QEMU_CUT_WORD:#x}  # stage0's power-cut control block",
    ]


def _loader_region_lines(internal: InternalFlash) -> list[str]:
    """The loader slot on the internal flash (read by a loader-image delta: its source)."""
    slots = [r for r in internal.regions if r.kind == "loader"]
    if not slots:
        return []
    return [f"LOADER_REGION = ({slots[0].offset:#x}, {slots[0].size:#x})  # the loader slot"]


def _loader_address(board: Board) -> int:
    """The address the loader slot's body runs at (after the 512-byte image header)."""
    slots = [r for r in board.internal_flash.regions if r.kind == "loader"]
    if not slots:
        return 0
    return board.internal_flash.base + slots[0].offset + 512


def render_manifest(loader_manifest: Path) -> str:
    """A freeze manifest: the loader's own (loader/manifest.py) plus ``board_config`` beside
    this manifest."""
    return (
        "# Freeze manifest: the suture loader and this board's configuration.\n"
        f"include({str(loader_manifest.resolve())!r})\n"
        'module("board_config.py")\n'
    )


def write_firmware_dir(
    board: Board, trust: LoaderTrust, out: Path, loader_manifest: Path
) -> list[Path]:
    """Write ``board_config.py`` and ``manifest.py`` into ``out``; nothing is written when the
    board or the trust settings are refused."""
    config = render_board_config(board, trust)
    if not loader_manifest.is_file():
        raise FirmwareConfigError(f"no loader manifest at {loader_manifest}")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "board_config.py", out / "manifest.py"]
    written[0].write_text(config)
    written[1].write_text(render_manifest(loader_manifest))
    return written
