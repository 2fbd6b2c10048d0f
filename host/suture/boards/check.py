"""`suture board check`: the rules a board's flash map must follow.

Each rule returns :class:`Problem` values naming the board, the region and the numbers, so a
broken definition says exactly what to fix. The rules:

- region names are unique within each flash;
- every region lies inside its flash, and no two regions overlap;
- every region starts and ends on an erase-sector boundary;
- a board with a stage0 has exactly one ``stage0`` region, and it starts at the boot address
  (directly, or through an alias of the flash, e.g. STM32's 0x08000000 seen at 0x00000000);
- a board without a stage0 says why (``stage0_note``), and stage0 needs a Cortex-M core;
- the external flash has a journal (two sectors, docs/formats/journal.md), an NVM store, a
  staging slot and a backup slot, one of each, and both slots hold the largest payload the map
  allows (the largest loader, littlefs or ROMFS region);
- the NOR chip's page divides its sector and the JEDEC id's capacity byte matches its size.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from suture.boards.schema import (
    CORTEX_M_CORES,
    PAYLOAD_KINDS,
    Board,
    ExternalRegion,
    InternalRegion,
)

JOURNAL_SECTORS = 2

Regions = Sequence[InternalRegion | ExternalRegion]


@dataclass(frozen=True)
class Problem:
    """One rule a definition breaks: which board, which region (if any), and why."""

    board: str
    region: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.board}" + (f", region {self.region!r}" if self.region else "")
        return f"{where}: {self.message}"


def _hex(value: int) -> str:
    return f"0x{value:08X}"


def _size(value: int) -> str:
    if value % 1024 == 0:
        return f"{value} bytes ({value // 1024} KiB)"
    return f"{value} bytes"


def _unique_names(
    board: Board, flash: str, regions: Regions
) -> Iterable[Problem]:
    seen: set[str] = set()
    for region in regions:
        if region.name in seen:
            yield Problem(board.name, region.name, f"two regions of the {flash} share this name")
        seen.add(region.name)


def _inside_and_disjoint(
    board: Board,
    flash: str,
    flash_size: int,
    regions: Regions,
) -> Iterable[Problem]:
    for region in regions:
        end = region.offset + region.size
        if end > flash_size:
            yield Problem(
                board.name,
                region.name,
                f"ends at offset {_hex(end)}, past the end of the {flash} "
                f"({_hex(flash_size)}, {_size(flash_size)})",
            )
    ordered = sorted(regions, key=lambda r: r.offset)
    for first, second in itertools.pairwise(ordered):
        first_end = first.offset + first.size
        if second.offset < first_end:
            yield Problem(
                board.name,
                second.name,
                f"starts at offset {_hex(second.offset)}, inside region {first.name!r} of the "
                f"{flash} ({_hex(first.offset)}..{_hex(first_end)})",
            )


def _aligned(
    board: Board,
    flash: str,
    boundaries: Sequence[int],
    sector_text: str,
    regions: Regions,
) -> Iterable[Problem]:
    bounds = set(boundaries)
    for region in regions:
        for label, value in (("starts", region.offset), ("ends", region.offset + region.size)):
            if value not in bounds and value <= boundaries[-1]:
                yield Problem(
                    board.name,
                    region.name,
                    f"{label} at offset {_hex(value)}, not on a sector boundary of the {flash} "
                    f"({sector_text})",
                )


def _geometry(board: Board) -> Iterable[Problem]:
    internal, external = board.internal_flash, board.external_flash
    if internal.sector is None and not internal.sector_layout:
        yield Problem(board.name, None, "internal_flash needs `sector` or `sector_layout`")
    if internal.sector is not None and internal.sector_layout:
        yield Problem(board.name, None, "internal_flash has both `sector` and `sector_layout`")
    if internal.sector_layout:
        total = sum(run.count * run.size for run in internal.sector_layout)
        if total != internal.size:
            yield Problem(
                board.name,
                None,
                f"internal_flash.sector_layout covers {_size(total)}, "
                f"but the flash is {_size(internal.size)}",
            )
    elif internal.sector is not None and internal.size % internal.sector:
        yield Problem(
            board.name,
            None,
            f"internal_flash.size {_size(internal.size)} is not a whole number of "
            f"{internal.sector}-byte sectors",
        )
    if external.sector % external.page:
        yield Problem(
            board.name,
            None,
            f"external_flash.page ({external.page}) does not divide its sector "
            f"({external.sector})",
        )
    if external.size % external.sector:
        yield Problem(
            board.name,
            None,
            f"external_flash.size {_size(external.size)} is not a whole number of "
            f"{external.sector}-byte sectors",
        )
    # JEDEC: manufacturer, memory type, capacity; the capacity byte is log2 of the size.
    capacity = external.jedec_id & 0xFF
    if external.size & (external.size - 1) == 0 and (1 << capacity) != external.size:
        yield Problem(
            board.name,
            None,
            f"external_flash.jedec_id 0x{external.jedec_id:06X} says 2**{capacity} bytes, "
            f"but size is {_size(external.size)} ({external.chip})",
        )


def _stage0(board: Board) -> Iterable[Problem]:
    stage0_regions = [r for r in board.internal_flash.regions if r.kind == "stage0"]
    if not board.stage0:
        if not board.stage0_note:
            yield Problem(board.name, None, "stage0 = false needs a `stage0_note` saying why")
        for region in stage0_regions:
            yield Problem(board.name, region.name, "a stage0 region on a board without stage0")
        return
    if board.core not in CORTEX_M_CORES:
        yield Problem(
            board.name, None, f"stage0 is Cortex-M code; core {board.core!r} cannot run it"
        )
    if board.boot_address is None:
        yield Problem(board.name, None, "a board with stage0 needs `boot_address`")
        return
    if len(stage0_regions) != 1:
        yield Problem(
            board.name,
            None,
            f"a board with stage0 needs exactly one internal region of kind 'stage0', "
            f"found {len(stage0_regions)}",
        )
        return
    region = stage0_regions[0]
    flash = board.internal_flash
    starts = [flash.base + region.offset, *(alias + region.offset for alias in flash.aliases)]
    if board.boot_address not in starts:
        seen_at = ", ".join(_hex(a) for a in starts)
        aliases = (
            f", aliased at {', '.join(_hex(a) for a in flash.aliases)}" if flash.aliases else ""
        )
        yield Problem(
            board.name,
            region.name,
            f"starts at {seen_at}, but the core boots from {_hex(board.boot_address)} "
            f"(internal flash at {_hex(flash.base)}{aliases})",
        )


def largest_payload(board: Board) -> tuple[int, str | None]:
    """The largest payload the map allows, and the region it would replace."""
    best: tuple[int, str | None] = (0, None)
    for region in board.internal_flash.regions:
        if region.kind in PAYLOAD_KINDS and region.size > best[0]:
            best = (region.size, region.name)
    return best


def _external_roles(board: Board) -> Iterable[Problem]:
    external = board.external_flash
    by_role: dict[str, list[ExternalRegion]] = {}
    for region in external.regions:
        by_role.setdefault(region.role, []).append(region)
    for role in ("journal", "nvm", "staging", "backup"):
        found = by_role.get(role, [])
        if len(found) != 1:
            yield Problem(
                board.name,
                None,
                f"the external flash needs exactly one {role} region, found {len(found)}",
            )
    for region in by_role.get("journal", []):
        need = JOURNAL_SECTORS * external.sector
        if region.size < need:
            yield Problem(
                board.name,
                region.name,
                f"the journal needs {JOURNAL_SECTORS} sectors ({_size(need)}), "
                f"has {_size(region.size)}",
            )
    payload, payload_region = largest_payload(board)
    for role in ("staging", "backup"):
        for region in by_role.get(role, []):
            if region.size < payload:
                yield Problem(
                    board.name,
                    region.name,
                    f"the {role} slot holds {_size(region.size)}, less than the largest payload "
                    f"the map allows: {_size(payload)} (region {payload_region!r})",
                )


def check_board(board: Board) -> list[Problem]:
    """Every rule ``board`` breaks; an empty list means the definition is sound."""
    internal, external = board.internal_flash, board.external_flash
    problems = list(_geometry(board))
    problems += _unique_names(board, "internal flash", internal.regions)
    problems += _unique_names(board, "external flash", external.regions)
    problems += _inside_and_disjoint(board, "internal flash", internal.size, internal.regions)
    problems += _inside_and_disjoint(board, "external flash", external.size, external.regions)
    if internal.sector is not None or internal.sector_layout:
        if internal.sector_layout:
            text = ", ".join(f"{run.count} x {_size(run.size)}" for run in internal.sector_layout)
        else:
            text = f"{internal.sector}-byte sectors"
        problems += _aligned(
            board, "internal flash", internal.sector_boundaries(), text, internal.regions
        )
    problems += _aligned(
        board,
        "external flash",
        list(range(0, external.size + 1, external.sector)),
        f"{external.sector}-byte sectors",
        external.regions,
    )
    problems += _stage0(board)
    problems += _external_roles(board)
    return problems
