"""`suture scheduler`: The hospital's scheduler: service, devices, releases, rollouts, audit log."""

from __future__ import annotations

import typer

scheduler_app = typer.Typer(help="The hospital's scheduler: service, devices, releases, rollouts, audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach the `scheduler` command group to the root app."""
    app.add_typer(scheduler_app, name="scheduler")
