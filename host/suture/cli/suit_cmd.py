"""`suture suit`: SUIT envelopes: create, sign, sever, inspect and verify."""

from __future__ import annotations

import typer

suit_app = typer.Typer(help="SUIT envelopes: create, sign, sever, inspect and verify.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `suit` command group to the root app."""
    app.add_typer(suit_app, name="suit")
