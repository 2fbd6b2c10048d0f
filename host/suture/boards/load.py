"""Find and load board definitions: ``boards/<name>/board.toml``, validated by the schema.

The folder is the repository's ``boards/`` (or ``$SUTURE_BOARDS_DIR``). A definition that does
not parse or does not fit the schema raises :class:`BoardDefinitionError` naming the file and
each offending key.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from suture.boards.schema import Board
from suture.errors import EXIT_USAGE, SutureError

BOARD_FILE = "board.toml"
# A board definition is a few KiB of TOML; refuse to parse anything absurdly large.
MAX_DEFINITION_BYTES = 256 * 1024


class BoardDefinitionError(SutureError):
    """A board definition is missing, unreadable, not TOML, or does not fit the schema."""


class UnknownBoardError(BoardDefinitionError):
    """No definition exists under the requested name (a wrong name: a usage error, exit 2)."""

    exit_code = EXIT_USAGE


def boards_dir() -> Path:
    """Where the definitions live: ``$SUTURE_BOARDS_DIR`` or the repository's ``boards/``."""
    env = os.environ.get("SUTURE_BOARDS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "boards"


def board_names(root: Path | None = None) -> list[str]:
    """The names of every definition under ``root`` (default :func:`boards_dir`), sorted."""
    folder = root if root is not None else boards_dir()
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{BOARD_FILE}"))


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)


def parse_board(text: str, *, source: str) -> Board:
    """Validate the TOML ``text`` of one definition; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardDefinitionError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Board.model_validate(data)
    except ValidationError as exc:
        raise BoardDefinitionError(
            f"{source}: does not fit the board schema:\n{_describe(exc)}"
        ) from None


def load_board_file(path: Path) -> Board:
    """Load one definition file; its folder's name must be the board's ``name``."""
    try:
        size = path.stat().st_size
        if size > MAX_DEFINITION_BYTES:
            raise BoardDefinitionError(f"{path}: {size} bytes is too large for a definition")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BoardDefinitionError(f"{path}: no such board definition") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardDefinitionError(f"{path}: cannot read: {exc}") from None
    board = parse_board(text, source=str(path))
    if board.name != path.parent.name:
        raise BoardDefinitionError(
            f"{path}: name = {board.name!r}, but the folder is {path.parent.name!r}"
        )
    return board


def load_board(name: str, root: Path | None = None) -> Board:
    """The definition named ``name``."""
    folder = root if root is not None else boards_dir()
    path = folder / name / BOARD_FILE
    if not path.is_file():
        known = ", ".join(board_names(folder)) or "none"
        raise UnknownBoardError(f"no board named {name!r} in {folder} (known: {known})")
    return load_board_file(path)
