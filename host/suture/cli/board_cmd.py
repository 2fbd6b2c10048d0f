"""`suture board`: Board definitions, provisioning, deploying and local updates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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

board_app = typer.Typer(
    help="Board definitions, provisioning, deploying and local updates.", no_args_is_help=True
)

_out = Console()
_err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load(name: str, root: Path | None) -> Board:
    try:
        return load_board(name, root)
    except BoardDefinitionError as exc:
        raise _fail(str(exc)) from None


BoardsDir = Annotated[
    Path | None,
    typer.Option(
        "--boards-dir", help="Folder of board definitions (default: the repository's boards/)."
    ),
]


@board_app.command("list")
def list_boards(boards: BoardsDir = None) -> None:
    """List the board definitions: name, core, MicroPython port, stage0, flashing method."""
    table = Table("board", "core", "micropython", "stage0", "flashing", "description")
    for name in board_names(boards):
        try:
            board = load_board(name, boards)
        except BoardDefinitionError as exc:
            table.add_row(name, "-", "-", "-", "-", f"[red]invalid:[/red] {exc}")
            continue
        port = f"{board.micropython.port}/{board.micropython.board}" if board.micropython else "-"
        table.add_row(
            board.name,
            board.core,
            port,
            "yes" if board.stage0 else "no",
            board.flashing.method,
            board.description,
        )
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
) -> None:
    """Show one board: core, MicroPython port, flashing method and both flash maps."""
    board = _load(name, boards)
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
    """Check board definitions: schema, regions inside the flash, no overlaps, sector
    alignment, stage0 at the boot address, staging and backup slots large enough.

    Exits non-zero and names each broken rule (board, region, numbers) when any fails.
    """
    targets: list[tuple[str, Path | None]] = []
    if file:
        targets = [(str(path), path) for path in file]
    else:
        chosen = names or board_names(boards)
        if not chosen:
            raise _fail(f"no board definitions found in {boards or boards_dir()}")
        targets = [(name, None) for name in chosen]
    failures = 0
    for label, path in targets:
        try:
            board = load_board_file(path) if path is not None else load_board(label, boards)
        except BoardDefinitionError as exc:
            failures += 1
            _err.print(f"[red]FAIL[/red] {exc}", highlight=False, soft_wrap=True)
            continue
        problems = check_board(board)
        if problems:
            failures += 1
            for problem in problems:
                _err.print(f"[red]FAIL[/red] {problem}", highlight=False, soft_wrap=True)
        else:
            _out.print(f"[green]ok[/green]   {board.name}", highlight=False)
    if failures:
        raise _fail(f"{failures} of {len(targets)} board definitions are broken")


def register(app: typer.Typer) -> None:
    """Attach the `board` command group to the root app."""
    app.add_typer(board_app, name="board")
