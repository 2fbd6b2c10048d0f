"""Board definitions: the typed schema, loading, and the checks of `suture board check`."""

from suture.boards.check import Problem, check_board, largest_payload
from suture.boards.load import (
    BoardDefinitionError,
    UnknownBoardError,
    board_names,
    boards_dir,
    load_board,
    load_board_file,
    parse_board,
)
from suture.boards.schema import Board, ExternalRegion, InternalRegion

__all__ = [
    "Board",
    "BoardDefinitionError",
    "ExternalRegion",
    "InternalRegion",
    "Problem",
    "UnknownBoardError",
    "board_names",
    "boards_dir",
    "check_board",
    "largest_payload",
    "load_board",
    "load_board_file",
    "parse_board",
]
