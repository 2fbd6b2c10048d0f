"""ESP32 boards through esptool's Python API (``esptool.cmds``).

- :func:`merge_image`: MicroPython's flash image for a board from ESP-IDF's parts (the
  second-stage bootloader, the partition table, the app, an ELF converted by ``elf2image``),
  merged by ``merge_bin`` at the offsets of the board's ``[flashing.esptool_image]``, the flash
  size in the bootloader's header set from the board's internal flash, and read back;
- :func:`write_flash`: ``write_flash`` over the serial port, the stub at the board's baud rate,
  then a hard reset.

esptool prints as a command-line tool; here its output goes through :class:`_ToolLogger` (its
documented custom-logger interface): its progress bars become suture's progress callback, its
lines are kept for the error message when it fails.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suture.boardops.flashing import (
    EsptoolWrite,
    FlashPlanError,
    FlashToolError,
    FlashUnreachableError,
)
from suture.boardops.toolio import StepProgress, ToolLog
from suture.boards.schema import Board, EspImage
from suture.boards.tools import ToolMissingError, esptool_chip, esptool_flash_size

ELF_MAGIC = b"\x7fELF"
# ESP-IDF's partition table (components/partition_table/gen_esp32part.py): 32-byte entries,
# then an MD5 entry over them; at most 0xC00 bytes.
PARTITION_MAGIC = b"\xaa\x50"
PARTITION_MD5_MAGIC = b"\xeb\xeb"
PARTITION_TABLE_SIZE = 0xC00
APP_TYPE = 0x00
FACTORY_SUBTYPE = 0x00
# The app's flash mode when suture converts an ELF: ESP-IDF's default, which every module wires.
APP_FLASH_MODE = "dio"


class EspImageError(FlashPlanError):
    """A part of an ESP32 firmware image is not what the board's layout needs."""


def _esptool() -> Any:
    try:
        import esptool.cmds
    except ImportError:
        raise ToolMissingError("esptool") from None
    return esptool.cmds


class _ToolLogger:
    """esptool's ``TemplateLogger`` interface: lines kept, progress passed on."""

    def __init__(self, log: ToolLog, progress: StepProgress | None, description: str) -> None:
        self.log = log
        self.progress = progress
        self.description = description

    def print(self, *args: object, **_kwargs: object) -> None:
        self.log.add(" ".join(str(a) for a in args))

    def note(self, message: str) -> None:
        self.log.add(message)

    def warning(self, message: str) -> None:
        self.log.add(message)

    def error(self, message: str) -> None:
        self.log.add(message)

    def stage(self, finish: bool = False) -> None:
        del finish

    def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "", suffix: str = "",
                     bar_length: int = 30) -> None:
        del prefix, suffix, bar_length
        if self.progress is not None:
            self.progress(self.description, cur_iter, total_iters)

    def set_verbosity(self, verbosity: str) -> None:
        del verbosity


@functools.cache
def _logger_class() -> Any:
    """:class:`_ToolLogger` as esptool's ``TemplateLogger`` (esptool imported only when used)."""
    from esptool.logger import TemplateLogger

    return type("SutureEsptoolLogger", (_ToolLogger, TemplateLogger), {})


@contextlib.contextmanager
def esptool_output(progress: StepProgress | None = None, description: str = "") -> Iterator[
        ToolLog]:
    """esptool's output collected (and its progress passed to ``progress``) while inside; its
    own logger comes back afterwards."""
    _esptool()
    from esp_pylib.logger import EspLog
    from esptool.logger import log

    logger_class = _logger_class()
    captured = ToolLog()
    previous = EspLog.instance
    log.set_logger(logger_class(captured, progress, description))
    try:
        yield captured
    finally:
        EspLog.instance = previous


# --- the image --------------------------------------------------------------------------------

@dataclass(frozen=True)
class EspParts:
    """ESP-IDF's build outputs: the bootloader, the partition table and the app (an app image,
    or the ELF it is made from)."""

    bootloader: Path
    partition_table: Path
    app: Path


@dataclass(frozen=True)
class Partition:
    """One entry of an ESP-IDF partition table."""

    label: str
    type: int
    subtype: int
    offset: int
    size: int


@dataclass(frozen=True)
class MergedImage:
    """What :func:`merge_image` wrote, as esptool reads it back."""

    path: Path
    size: int
    chip: str
    flash_size: str
    bootloader_entry: int
    app_entry: int
    app_offset: int
    app_size: int


def read_partition_table(data: bytes) -> list[Partition]:
    """The entries of an ESP-IDF partition table; its MD5 entry, when present, must match."""
    entries: list[Partition] = []
    for offset in range(0, min(len(data), PARTITION_TABLE_SIZE), 32):
        entry = data[offset : offset + 32]
        if entry[:2] == PARTITION_MAGIC:
            kind, subtype, start, size = struct.unpack_from("<BBII", entry, 2)
            label = entry[12:28].split(b"\x00")[0].decode("ascii", "replace")
            entries.append(Partition(label, kind, subtype, start, size))
        elif entry[:2] == PARTITION_MD5_MAGIC:
            if entry[16:32] != hashlib.md5(data[:offset], usedforsecurity=False).digest():
                raise EspImageError("the partition table's MD5 does not match its entries")
            break
        else:
            break
    if not entries:
        raise EspImageError("not an ESP-IDF partition table (no entry with the magic 0x50AA)")
    return entries


def _factory_app(partitions: list[Partition]) -> Partition:
    apps = [p for p in partitions if p.type == APP_TYPE]
    factory = next((p for p in apps if p.subtype == FACTORY_SUBTYPE), None)
    if factory is None and apps:
        factory = apps[0]
    if factory is None:
        raise EspImageError("the partition table has no app partition")
    return factory


def _layout(board: Board) -> tuple[str, EspImage, str]:
    chip = board.flashing.esptool_chip
    layout = board.flashing.esptool_image
    if chip is None or layout is None:
        raise FlashPlanError(f"board {board.name} has no flashing.esptool_chip and "
                             "[flashing.esptool_image]: it is not an ESP32 board")
    flash_size = esptool_flash_size(chip, board.internal_flash.size)
    if esptool_chip(chip) is None or flash_size is None:
        raise FlashPlanError(f"board {board.name}: esptool knows no {chip} with "
                             f"{board.internal_flash.size} bytes of flash "
                             f"(`suture board check {board.name}`)")
    return chip, layout, flash_size


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EspImageError(f"the {what} {path}: {exc.strerror or exc}") from None
    if not data:
        raise EspImageError(f"the {what} {path} is empty")
    return data


def app_image(board: Board, app: Path) -> bytes:
    """The app image of ``app``: as it is, or made from an ELF by esptool's ``elf2image`` for
    the board's chip and flash size."""
    chip, _, flash_size = _layout(board)
    data = _read(app, "app")
    if not data.startswith(ELF_MAGIC):
        return data
    cmds = _esptool()
    from esptool.util import FatalError

    with esptool_output() as out:
        try:
            image = cmds.elf2image(data, chip, output=None, flash_mode=APP_FLASH_MODE,
                                   flash_size=flash_size)
        except FatalError as exc:
            raise EspImageError(f"esptool cannot make an {chip} app image of {app}: {exc}"
                                f"{'; ' + out.tail() if out.lines else ''}") from None
    assert isinstance(image, bytes)
    return image


def _check_image(chip: str, data: bytes, what: str) -> Any:
    _esptool()
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    rom = esptool_chip(chip)
    try:
        image = LoadFirmwareImage(chip, data)
    except FatalError as exc:
        raise EspImageError(f"the {what} is not an {rom.CHIP_NAME} image: {exc}") from None
    if getattr(image, "chip_id", rom.IMAGE_CHIP_ID) != rom.IMAGE_CHIP_ID:
        raise EspImageError(f"the {what} is for chip id {image.chip_id}, not {rom.CHIP_NAME} "
                            f"({rom.IMAGE_CHIP_ID})")
    return image


def merge_image(board: Board, parts: EspParts, out: Path) -> MergedImage:
    """Write to ``out`` the flash image of ``board`` (from offset 0) merged from ``parts``, and
    read it back.

    Refused when a part is not an image for the board's chip, does not fit before the next one,
    or the partition table puts the factory app elsewhere than the board's layout.
    """
    chip, layout, flash_size = _layout(board)
    bootloader = _read(parts.bootloader, "bootloader")
    table = _read(parts.partition_table, "partition table")
    app = app_image(board, parts.app)
    _check_image(chip, bootloader, f"bootloader {parts.bootloader}")
    _check_image(chip, app, f"app {parts.app}")
    factory = _factory_app(read_partition_table(table))
    if factory.offset != layout.app:
        raise EspImageError(
            f"the partition table puts the app {factory.label!r} at 0x{factory.offset:X}; "
            f"board {board.name} has it at 0x{layout.app:X}")
    if len(app) > factory.size:
        raise EspImageError(f"the app ({len(app)} bytes) does not fit its partition "
                            f"{factory.label!r} ({factory.size} bytes)")
    for what, start, size, limit in (
            ("bootloader", layout.bootloader, len(bootloader), layout.partition_table),
            ("partition table", layout.partition_table, len(table), layout.app)):
        if start + size > limit:
            raise EspImageError(f"the {what} ({size} bytes from 0x{start:X}) runs into "
                                f"0x{limit:X}")
    cmds = _esptool()
    from esptool.util import FatalError

    with esptool_output() as log:
        try:
            cmds.merge_bin([(layout.bootloader, bootloader), (layout.partition_table, table),
                            (layout.app, app)], chip, output=str(out), flash_freq="keep",
                           flash_mode="keep", flash_size=flash_size)
        except FatalError as exc:
            raise EspImageError(f"esptool cannot merge the image: {exc}"
                                f"{'; ' + log.tail() if log.lines else ''}") from None
        except OSError as exc:
            raise EspImageError(f"{out}: {exc.strerror or exc}") from None
    merged = out.read_bytes()
    boot = _check_image(chip, merged[layout.bootloader : layout.partition_table],
                        f"merged image's bootloader ({out})")
    written = _check_image(chip, merged[layout.app :], f"merged image's app ({out})")
    return MergedImage(out, len(merged), chip, flash_size, boot.entrypoint, written.entrypoint,
                       layout.app, len(app))


def image_info(data: bytes, chip: str) -> str:
    """What esptool's ``image_info`` says of an image, as text."""
    cmds = _esptool()
    from esptool.util import FatalError

    with esptool_output() as log:
        try:
            cmds.image_info(data, chip=chip)
        except FatalError as exc:
            raise EspImageError(f"esptool cannot read the image: {exc}") from None
    return "\n".join(log.lines)


# --- the board --------------------------------------------------------------------------------

def write_flash(step: EsptoolWrite, progress: StepProgress | None = None, *,
                connect_attempts: int = 7) -> None:
    """Run ``step``: connect to the chip on its port (refused when another chip answers),
    load the stub, write each image, verify, hard-reset."""
    cmds = _esptool()
    from esptool.util import FatalError
    from serial import SerialException

    with esptool_output(progress, step.description) as log:
        try:
            esp = cmds.connect_esp(port=step.port, chip=step.chip,
                                   connect_attempts=connect_attempts)
        except (FatalError, SerialException, OSError) as exc:
            raise FlashUnreachableError(
                f"no {step.chip} answers on {step.port}: {_first_line(exc)} (hold BOOT while "
                "pressing RESET to start its ROM bootloader)") from None
        try:
            with esp:
                esp = cmds.run_stub(esp)
                if step.baud != esp.ESP_ROM_BAUD:
                    esp.change_baud(step.baud)
                cmds.attach_flash(esp)
                cmds.write_flash(esp, [(address, str(path)) for address, path in step.writes],
                                 flash_freq="keep", flash_mode="keep", flash_size="keep")
                cmds.reset_chip(esp, "hard-reset")
        except (FatalError, SerialException) as exc:
            raise FlashToolError(f"esptool failed to {step.description}: {_first_line(exc)}"
                                 f"{'; ' + log.tail() if log.lines else ''}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
