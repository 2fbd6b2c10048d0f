"""`suture keygen`: generate signing keys."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the `keygen` command to the root app."""
