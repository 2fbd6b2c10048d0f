"""What the pinned board tools know, asked of the tools themselves, and the rules of
`suture board check` that hold a definition against them.

- esptool (:data:`esptool.targets.CHIP_DEFS`): the chip, the flash sizes its image header can
  state, and where the chip's ROM looks for the second-stage bootloader;
- adafruit-nrfutil: the ``--dev-type`` of ``dfu genpkg``, read by the tool's own option type
  and packed into its init packet;
- pyocd: the target, built in (:data:`pyocd.target.TARGET`) or from an installed CMSIS pack,
  and its flash algorithm's erase sectors and smallest program unit against the definition's
  internal flash.

The tools are the ``boards`` extra (``pip install 'suture[boards]'``); each is imported only when
a definition names it. A tool that is not installed, or a pack target whose pack is not, leaves a
:class:`Note` (not checked) rather than a :class:`~suture.boards.check.Problem`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from suture.boards.check import Problem
from suture.boards.load import BoardDefinitionError
from suture.boards.schema import Board

INSTALL_HINT = "pip install 'suture[boards]'"
# ESP-IDF places app partitions on 64 KiB boundaries (the flash MMU's page).
ESP_APP_ALIGN = 0x10000
ESP_PARTITION_TABLE_ALIGN = 0x1000
# What each flashing method needs from [flashing].
METHOD_SETTINGS: dict[str, tuple[str, ...]] = {
    "pyocd": ("pyocd_target",),
    "esptool": ("esptool_chip",),
    "adafruit-nrfutil": ("nrfutil_dev_type",),
    "uf2": ("uf2_family", "uf2_volume"),
}


@dataclass(frozen=True)
class Note:
    """A check that could not be made (a tool or a CMSIS pack is not installed)."""

    board: str
    message: str

    def __str__(self) -> str:
        return f"{self.board}: {self.message}"


@dataclass(frozen=True)
class ToolReport:
    """What the pinned tools say about one definition."""

    problems: list[Problem]
    notes: list[Note]


class ToolMissingError(BoardDefinitionError):
    """A board tool that a definition's settings name is not installed."""

    def __init__(self, tool: str) -> None:
        super().__init__(f"{tool} is not installed ({INSTALL_HINT})")
        self.tool = tool


def tool_version(tool: str) -> str | None:
    """The installed version of ``tool``'s distribution, or None."""
    try:
        return importlib.metadata.version(tool)
    except importlib.metadata.PackageNotFoundError:
        return None


def _label(tool: str) -> str:
    version = tool_version(tool)
    return f"{tool} {version}" if version else tool


# --- esptool ----------------------------------------------------------------------------------

def esptool_chips() -> tuple[str, ...]:
    """Every chip name esptool knows (``--chip``)."""
    try:
        from esptool.targets import CHIP_LIST
    except ImportError:
        raise ToolMissingError("esptool") from None
    return tuple(CHIP_LIST)


def esptool_chip(chip: str) -> Any:
    """esptool's class for ``chip`` (its ROM's constants), or None when esptool knows none."""
    try:
        from esptool.targets import CHIP_DEFS
    except ImportError:
        raise ToolMissingError("esptool") from None
    return CHIP_DEFS.get(chip)


def esptool_flash_size(chip: str, size: int) -> str | None:
    """The name esptool gives ``size`` bytes of flash for ``chip`` (``"8MB"``), if it has one."""
    rom = esptool_chip(chip)
    if rom is None:
        return None
    for name in rom.FLASH_SIZES:
        match = re.fullmatch(r"(\d+)(KB|MB)", name)  # not the ESP8266's "2MB-c1" layouts
        if match and int(match[1]) * (1024 if match[2] == "KB" else 1024 * 1024) == size:
            return str(name)
    return None


def _esptool_problems(board: Board) -> Iterator[Problem]:
    chip = board.flashing.esptool_chip
    if chip is None:
        return
    rom = esptool_chip(chip)
    if rom is None:
        yield Problem(board.name, None,
                      f"flashing.esptool_chip {chip!r} is not a chip {_label('esptool')} knows "
                      f"({', '.join(esptool_chips())})")
        return
    size = board.internal_flash.size
    if esptool_flash_size(chip, size) is None:
        yield Problem(board.name, None,
                      f"internal_flash.size {size} bytes is not a flash size {_label('esptool')} "
                      f"can state for {chip} ({', '.join(rom.FLASH_SIZES)})")
    layout = board.flashing.esptool_image
    if layout is None:
        return
    where = f"flashing.esptool_image of {chip}"
    if layout.bootloader != rom.BOOTLOADER_FLASH_OFFSET:
        yield Problem(board.name, None,
                      f"{where}: the bootloader at 0x{layout.bootloader:X}, but the ROM of "
                      f"{rom.CHIP_NAME} starts it from 0x{rom.BOOTLOADER_FLASH_OFFSET:X} "
                      f"({_label('esptool')})")
    if layout.partition_table % ESP_PARTITION_TABLE_ALIGN or \
            layout.partition_table <= layout.bootloader:
        yield Problem(board.name, None,
                      f"{where}: the partition table at 0x{layout.partition_table:X} must follow "
                      f"the bootloader on a 4 KiB boundary")
    if layout.app % ESP_APP_ALIGN or layout.app <= layout.partition_table:
        yield Problem(board.name, None,
                      f"{where}: the app at 0x{layout.app:X} must follow the partition table on "
                      f"a 64 KiB boundary (ESP-IDF's app partitions)")
    if not any(r.offset == layout.app for r in board.internal_flash.regions):
        yield Problem(board.name, None,
                      f"{where}: no internal region starts at the app's offset 0x{layout.app:X}")
    if layout.app >= size:
        yield Problem(board.name, None, f"{where}: the app at 0x{layout.app:X} is past the flash")


# --- adafruit-nrfutil -------------------------------------------------------------------------

def nrfutil_dev_type(value: str) -> int:
    """``value`` read as ``adafruit-nrfutil dfu genpkg --dev-type`` reads it and packed into the
    init packet as the tool packs it; ValueError with the tool's reason when it cannot."""
    try:
        import click
        from nordicsemi.__main__ import BASED_INT_OR_NONE
        from nordicsemi.dfu.init_packet import Packet, PacketField
    except ImportError:
        raise ToolMissingError("adafruit-nrfutil") from None
    try:
        parsed = BASED_INT_OR_NONE.convert(value, None, None)
    except click.BadParameter as exc:
        raise ValueError(exc.format_message()) from None
    if parsed == "none":
        raise ValueError("'none' leaves the device type out of the init packet, which the "
                         "bootloader checks")
    try:
        Packet({PacketField.DEVICE_TYPE: parsed}).generate_packet()
    except struct.error as exc:
        raise ValueError(f"it does not fit the init packet's device type field: {exc}") from None
    return int(parsed)


def _nrfutil_problems(board: Board) -> Iterator[Problem]:
    value = board.flashing.nrfutil_dev_type
    if value is None:
        return
    try:
        nrfutil_dev_type(value)
    except ValueError as exc:
        yield Problem(board.name, None,
                      f"flashing.nrfutil_dev_type {value!r} is not a --dev-type "
                      f"{_label('adafruit-nrfutil')} takes: {exc}")


# --- pyocd ------------------------------------------------------------------------------------

@functools.cache
def pyocd_builtin_targets() -> dict[str, Any]:
    """pyocd's built-in targets by name."""
    try:
        from pyocd.target import TARGET
    except ImportError:
        raise ToolMissingError("pyocd") from None
    return dict(TARGET)


def pyocd_pack_targets() -> dict[str, Any]:
    """The targets of the CMSIS packs installed for pyocd (``pyocd pack install``), by name."""
    try:
        from pyocd.target.pack.pack_target import ManagedPacks
    except ImportError:
        raise ToolMissingError("pyocd") from None
    return {dev.part_number.lower(): dev for dev in ManagedPacks.get_installed_targets()}


@dataclass(frozen=True)
class FlashGeometry:
    """One flash region of a pyocd target: where, erase sector, smallest program unit."""

    start: int
    length: int
    sector: int
    program_unit: int | None

    def contains(self, address: int) -> bool:
        return self.start <= address < self.start + self.length


def pyocd_flash_geometry(target: str) -> list[FlashGeometry] | None:
    """The flash regions of pyocd's ``target`` as its flash algorithms program them; None when
    pyocd knows no such target here (neither built in nor from an installed pack)."""
    builtin = pyocd_builtin_targets().get(target)
    if builtin is not None:
        memory_map = builtin.MEMORY_MAP
    else:
        device = pyocd_pack_targets().get(target)
        if device is None:
            return None
        memory_map = device.memory_map
    from pyocd.core.memory_map import FlashRegion

    found = []
    for region in memory_map:
        if isinstance(region, FlashRegion):
            algo = region.algo or {}
            unit = algo.get("min_program_length")
            found.append(FlashGeometry(region.start, region.length, region.sector_size,
                                       int(unit) if unit else None))
    return found


def _sectors(board: Board) -> Iterator[tuple[int, int]]:
    """(offset, size) of each erase sector of the internal flash."""
    bounds = board.internal_flash.sector_boundaries()
    for start, end in itertools.pairwise(bounds):
        yield start, end - start


def _geometry_problems(board: Board, target: str, regions: list[FlashGeometry]) -> Iterator[
        Problem]:
    flash = board.internal_flash
    tool = _label("pyocd")
    reported: set[tuple[str, int]] = set()
    for offset, size in _sectors(board):
        address = flash.base + offset
        region = next((r for r in regions if r.contains(address)), None)
        if region is None:
            if ("outside", 0) not in reported:
                reported.add(("outside", 0))
                yield Problem(board.name, None,
                              f"internal flash at 0x{address:08X} is outside every flash region "
                              f"of {tool}'s target {target} "
                              f"({', '.join(f'0x{r.start:08X}+0x{r.length:X}' for r in regions)})")
            continue
        if region.sector != size and ("sector", region.start) not in reported:
            reported.add(("sector", region.start))
            yield Problem(board.name, None,
                          f"{tool}'s flash algorithm for {target} erases {region.sector}-byte "
                          f"sectors at 0x{address:08X}; the definition says {size}")
        if region.program_unit is not None and region.program_unit != flash.page and \
                ("page", region.start) not in reported:
            reported.add(("page", region.start))
            yield Problem(board.name, None,
                          f"{tool}'s flash algorithm for {target} programs at least "
                          f"{region.program_unit} bytes at 0x{address:08X}; the definition's "
                          f"internal_flash.page is {flash.page}")


def _pyocd_problems(board: Board) -> Iterator[Problem | Note]:
    target = board.flashing.pyocd_target
    if target is None:
        return
    pack = board.flashing.pyocd_pack
    if target in pyocd_builtin_targets():
        if pack is not None:
            yield Problem(board.name, None,
                          f"flashing.pyocd_pack {pack!r}: {_label('pyocd')} builds target "
                          f"{target} in; drop the pack")
    elif pack is None:
        yield Problem(board.name, None,
                      f"flashing.pyocd_target {target!r} is not a target {_label('pyocd')} "
                      f"builds in (`pyocd list --targets`); for a CMSIS pack's target name the "
                      f"pack in flashing.pyocd_pack")
        return
    elif target not in pyocd_pack_targets():
        yield Note(board.name,
                   f"pyocd target {target} comes from the CMSIS pack {pack}, which is not "
                   f"installed: its flash geometry is not checked (`pyocd pack install {target}`)")
        return
    regions = pyocd_flash_geometry(target)
    assert regions is not None
    yield from _geometry_problems(board, target, regions)


# --- the check --------------------------------------------------------------------------------

def _settings_problems(board: Board) -> Iterator[Problem]:
    flashing = board.flashing
    for method in flashing.methods:
        for setting in METHOD_SETTINGS.get(method, ()):
            if getattr(flashing, setting) is None:
                yield Problem(board.name, None,
                              f"flashing method {method!r} needs flashing.{setting}")
    if flashing.uf2_family is not None:
        try:
            family = int(flashing.uf2_family, 16)
        except ValueError:
            family = -1
        if not 0 <= family <= 0xFFFFFFFF:
            yield Problem(board.name, None,
                          f"flashing.uf2_family {flashing.uf2_family!r} is not a 32-bit hex number")


def check_board_tools(board: Board) -> ToolReport:
    """Hold ``board``'s flashing settings against the pinned tools."""
    problems: list[Problem] = list(_settings_problems(board))
    notes: list[Note] = []
    rules: tuple[tuple[str, Any], ...] = (
        ("esptool", _esptool_problems), ("adafruit-nrfutil", _nrfutil_problems),
        ("pyocd", _pyocd_problems))
    for tool, rule in rules:
        try:
            found: Iterable[Problem | Note] = list(rule(board))
        except ToolMissingError:
            notes.append(Note(board.name, f"{tool} is not installed: its settings are not "
                                          f"checked ({INSTALL_HINT})"))
            continue
        for item in found:
            if isinstance(item, Note):
                notes.append(item)
            else:
                problems.append(item)
    return ToolReport(problems, notes)
