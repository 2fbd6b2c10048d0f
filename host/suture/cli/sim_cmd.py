"""`suture sim`: the ward simulator."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `sim` command to the root app."""
