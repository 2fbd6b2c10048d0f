"""`suture image`: stage0 loader images: sign and inspect."""

from __future__ import annotations

import typer

image_app = typer.Typer(help="stage0 loader images: sign and inspect.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `image` command group to the root app."""
    app.add_typer(image_app, name="image")
