"""`suture board`: Board definitions, provisioning, deploying and local updates."""

from __future__ import annotations

import typer

board_app = typer.Typer(help="Board definitions, provisioning, deploying and local updates.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `board` command group to the root app."""
    app.add_typer(board_app, name="board")
