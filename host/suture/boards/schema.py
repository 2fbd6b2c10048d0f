"""The typed schema of a board definition (``boards/<name>/board.toml``).

A definition says what a board is (MCU, core, MicroPython port), how its flash is laid out
(internal flash regions and the external SPI NOR chip's regions), how it is wired (SPI bus and
pins of the NOR chip, the log UART, the USB identity of its serial port) and how it is flashed.
The schema only checks the shape of each value; :mod:`suture.boards.check` checks that the whole
map makes sense (regions inside the flash, no overlaps, sector alignment, boot address, slots
large enough).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, field_validator

Core = Literal["none", "cortex-m0+", "cortex-m3", "cortex-m4", "cortex-m33", "xtensa-lx7"]

# Cores stage0 is built for: it is Cortex-M code (vector table, Thumb-2 jump).
CORTEX_M_CORES: frozenset[str] = frozenset({"cortex-m0+", "cortex-m3", "cortex-m4", "cortex-m33"})

# What an internal-flash region holds.
#   stage0    the immutable C bootloader, at the boot address
#   loader    the loader image: MicroPython firmware with the frozen `loader` package
#   littlefs  a littlefs filesystem: the update agent and the application (.mpy)
#   romfs     a MicroPython ROMFS partition holding the application
#   reserved  something suture never touches (a vendor bootloader, a SoftDevice, a boot2 stage)
#   spare     unused
InternalKind = Literal["stage0", "loader", "littlefs", "romfs", "reserved", "spare"]

# What an external-flash region holds (docs/formats/: the journal, the NVM store, the slots).
#   loader-backup  stage0's copy of the last confirmed loader image (separate from the
#                  application's backup, so an application update never overwrites it)
ExternalKind = Literal["journal", "nvm", "staging", "backup", "loader-backup", "spare"]

# The kinds whose content an update replaces: an update payload is at most one of these.
PAYLOAD_KINDS: frozenset[str] = frozenset({"loader", "littlefs", "romfs"})

FlashMethod = Literal["sim", "qemu", "pyocd", "adafruit-nrfutil", "uf2", "dfu-util", "esptool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InternalRegion(_Strict):
    """A named range of the internal flash; ``offset`` counts from the flash's first byte."""

    name: str = Field(min_length=1)
    kind: InternalKind
    offset: NonNegativeInt
    size: PositiveInt
    description: str = ""


class ExternalRegion(_Strict):
    """A named range of the external NOR flash. ``kind`` defaults to the region's name."""

    name: str = Field(min_length=1)
    kind: ExternalKind | None = None
    offset: NonNegativeInt
    size: PositiveInt
    description: str = ""

    @property
    def role(self) -> str:
        """What the region holds: its ``kind``, or its name when no kind is given."""
        return self.kind if self.kind is not None else self.name


class SectorRun(_Strict):
    """``count`` consecutive erase sectors of ``size`` bytes (flash with uneven sectors)."""

    count: PositiveInt
    size: PositiveInt


class InternalFlash(_Strict):
    """The MCU's own flash.

    ``base`` is its address in the memory map; ``aliases`` are other addresses at which the
    same bytes appear (an STM32 maps its flash at 0x08000000 and, booting from flash, aliases it
    at 0x00000000). Erase sectors are either all ``sector`` bytes or, on chips with uneven
    sectors, listed in ``sector_layout``.
    """

    size: PositiveInt
    sector: PositiveInt | None = None
    sector_layout: tuple[SectorRun, ...] = ()
    page: PositiveInt
    base: NonNegativeInt = 0
    aliases: tuple[NonNegativeInt, ...] = ()
    regions: tuple[InternalRegion, ...] = Field(min_length=1)

    def region(self, name: str) -> InternalRegion | None:
        """The region called ``name``, if the flash has one."""
        return next((r for r in self.regions if r.name == name), None)

    def sector_boundaries(self) -> list[int]:
        """Every offset at which an erase sector starts, plus the flash's end."""
        if self.sector_layout:
            bounds = [0]
            for run in self.sector_layout:
                for _ in range(run.count):
                    bounds.append(bounds[-1] + run.size)
            return bounds
        assert self.sector is not None
        return list(range(0, self.size + 1, self.sector))


class SpiBus(_Strict):
    """How the NOR chip is wired: the MicroPython bus id and pin names."""

    bus: int | str
    sck: str
    mosi: str
    miso: str
    cs: str
    baudrate: PositiveInt = 8_000_000
    quad: bool = False  # wired for QSPI (extra IO2/IO3 pins in io2/io3)
    io2: str | None = None
    io3: str | None = None


class ExternalFlash(_Strict):
    """The external SPI NOR chip: geometry, JEDEC id (manufacturer, type, capacity) and wiring."""

    chip: str = Field(min_length=1)
    jedec_id: NonNegativeInt = Field(le=0xFFFFFF)
    size: PositiveInt
    sector: PositiveInt
    page: PositiveInt
    spi: SpiBus | None = None
    regions: tuple[ExternalRegion, ...] = Field(min_length=1)


class MicroPython(_Strict):
    """The MicroPython port and board the loader image is built from.

    ``machine`` is a substring of ``sys.implementation._machine`` on a running board (e.g.
    ``"RP2040"`` in "Raspberry Pi Pico with RP2040"): it is how the tools tell this board from
    another kind plugged into the same port.
    """

    port: str
    board: str
    variant: str | None = None
    heapsize: PositiveInt | None = None
    machine: str | None = None


class EspImage(_Strict):
    """Where the parts of an ESP-IDF firmware image go in the flash (offsets from its start):
    the second-stage bootloader, the partition table and the factory app (MicroPython)."""

    bootloader: NonNegativeInt
    partition_table: NonNegativeInt = 0x8000
    app: NonNegativeInt


class Flashing(_Strict):
    """How firmware is written: the ``method`` the tools use, and the other ways that work.

    Each method's settings name what the pinned tool knows (``suture board check`` asks it):
    ``pyocd_target`` a pyocd target (built in, or from the CMSIS pack ``pyocd_pack``),
    ``esptool_chip`` an esptool chip, ``nrfutil_dev_type`` the ``--dev-type`` of
    ``adafruit-nrfutil dfu genpkg``.
    """

    method: FlashMethod
    alternatives: tuple[FlashMethod, ...] = ()
    pyocd_target: str | None = None
    pyocd_pack: str | None = None  # the CMSIS pack of a target pyocd does not build in
    esptool_chip: str | None = None
    esptool_image: EspImage | None = None
    uf2_family: str | None = None
    uf2_volume: str | None = None  # the volume label the UF2 bootloader mounts
    dfu_alt: NonNegativeInt | None = None
    nrfutil_dev_type: str | None = None  # adafruit-nrfutil dfu genpkg --dev-type
    baud: PositiveInt = 115200

    @property
    def methods(self) -> tuple[FlashMethod, ...]:
        """The default method, then the alternatives."""
        return (self.method, *self.alternatives)


class Uart(_Strict):
    """The UART the board writes its log to."""

    name: str
    tx: str | None = None
    rx: str | None = None
    baud: PositiveInt = 115200


class Usb(_Strict):
    """USB identity of the board's serial port while MicroPython runs (``vid``/``pid``)."""

    vid: int = Field(ge=0, le=0xFFFF)
    pid: int = Field(ge=0, le=0xFFFF)


class Qemu(_Strict):
    """How QEMU runs a QEMU board: the ``-M`` machine, where stage0's port keeps the external
    flash in RAM, and stage0's build folder (``stage0/build/<build>``)."""

    machine: str
    external_base: NonNegativeInt
    build: str


class Board(_Strict):
    """One board definition."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    mcu: str
    core: Core
    stage0: bool
    # Why there is no stage0 (required when ``stage0`` is false): the reader must know.
    stage0_note: str | None = None
    boot_address: NonNegativeInt | None = None
    micropython: MicroPython | None = None
    internal_flash: InternalFlash
    external_flash: ExternalFlash
    flashing: Flashing
    log_uart: Uart | None = None
    usb: tuple[Usb, ...] = ()
    qemu: Qemu | None = None
    # The agent's transport (NVM record net.link, written by `suture board provision|deploy`):
    # "http" (the board has IP), "uart:ID:BAUD" (the device link over machine.UART to a
    # gateway), "tty:PATH" or "qemu"; unset: "qemu" on QEMU boards, else "http".
    link: str | None = None

    @field_validator("link")
    @classmethod
    def _link_spec(cls, value: str | None) -> str | None:
        return None if value is None else check_link(value)

    @property
    def default_link(self) -> str:
        """The transport a provisioned board uses unless told otherwise."""
        if self.link is not None:
            return self.link
        return "qemu" if self.qemu is not None else "http"


LINK_FORMS = ("http", "qemu", "uart:<id>:<baud>", "tty:<path>")


def check_link(spec: str) -> str:
    """``spec`` if it names a transport the agent has (device/agent/transport/__init__.py),
    else ValueError."""
    if spec in ("http", "qemu"):
        return spec
    if spec.startswith("tty:") and len(spec) > 4 and len(spec) <= 200:
        return spec
    parts = spec.split(":")
    if len(parts) == 3 and parts[0] == "uart" and parts[1].isdigit() and parts[2].isdigit() \
            and 300 <= int(parts[2]) <= 4_000_000:
        return spec
    raise ValueError(f"link {spec!r} is not one of {', '.join(LINK_FORMS)} "
                     "(e.g. uart:0:115200)")
