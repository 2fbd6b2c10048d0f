"""Board geometry for the simulator, read from ``boards/<board>/board.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suture.sim.errors import SimError

REQUIRED_REGIONS = ("journal", "nvm", "staging", "backup")


class BoardError(SimError, ValueError):
    """A board definition the simulator cannot use."""


@dataclass(frozen=True)
class FlashGeometry:
    """One NOR chip: total size, erase sector and program page, in bytes."""

    size: int
    sector: int
    page: int

    def __post_init__(self) -> None:
        if self.page <= 0 or self.sector % self.page or self.size % self.sector:
            raise BoardError(f"inconsistent flash geometry {self}")


@dataclass(frozen=True)
class Region:
    """A named, sector-aligned part of the external flash."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class BoardGeometry:
    """What the simulator needs from a board definition."""

    name: str
    internal: FlashGeometry
    external: FlashGeometry
    regions: dict[str, Region] = field(default_factory=dict)
    heapsize: int = 262144

    def __post_init__(self) -> None:
        for name in REQUIRED_REGIONS:
            if name not in self.regions:
                raise BoardError(f"board {self.name}: external flash lacks region {name!r}")
        for r in self.regions.values():
            if r.offset % self.external.sector or r.size % self.external.sector:
                raise BoardError(f"region {r.name} not sector-aligned")
            if r.offset + r.size > self.external.size:
                raise BoardError(f"region {r.name} ends past the external flash")
        if self.regions["journal"].size < 2 * self.external.sector:
            raise BoardError("journal region needs two sectors")


def _flash(table: dict[str, Any], key: str) -> FlashGeometry:
    try:
        t = table[key]
        return FlashGeometry(int(t["size"]), int(t["sector"]), int(t["page"]))
    except (KeyError, TypeError) as e:
        raise BoardError(f"board definition: {key}.size/sector/page missing") from e


def load_board(path: Path) -> BoardGeometry:
    """Read the flash geometry and external regions from a board.toml."""
    data = tomllib.loads(path.read_text())
    regions = {
        str(r["name"]): Region(str(r["name"]), int(r["offset"]), int(r["size"]))
        for r in data.get("external_flash", {}).get("regions", [])
    }
    heap = int(data.get("micropython", {}).get("heapsize", 262144))
    return BoardGeometry(
        name=str(data.get("name", path.parent.name)),
        internal=_flash(data, "internal_flash"),
        external=_flash(data, "external_flash"),
        regions=regions,
        heapsize=heap,
    )


def small_geometry(
    *,
    internal_size: int = 64 * 1024,
    nvm_sectors: int = 4,
    slot_size: int = 32 * 1024,
    sector: int = 4096,
    page: int = 256,
) -> BoardGeometry:
    """A small board for fast power-cut sweeps: journal (2 sectors), NVM, staging, backup."""
    journal = Region("journal", 0, 2 * sector)
    nvm = Region("nvm", journal.size, nvm_sectors * sector)
    staging = Region("staging", nvm.offset + nvm.size, slot_size)
    backup = Region("backup", staging.offset + slot_size, slot_size)
    ext_size = backup.offset + slot_size
    return BoardGeometry(
        name="sim-small",
        internal=FlashGeometry(internal_size, sector, page),
        external=FlashGeometry(ext_size, sector, page),
        regions={r.name: r for r in (journal, nvm, staging, backup)},
        # the firmware's heap on the QEMU boards; the simulated flash's own bookkeeping (its
        # weak-byte map after partial erases and torn programs) lives in the same heap here
        heapsize=192 * 1024,
    )
