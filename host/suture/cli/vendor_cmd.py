"""`suture vendor`: The vendor's release repository and GNAP authorization server."""

from __future__ import annotations

import typer

vendor_app = typer.Typer(help="The vendor's release repository and GNAP authorization server.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `vendor` command group to the root app."""
    app.add_typer(vendor_app, name="vendor")
