"""The ``suture`` command: one Typer app, each command group in a module of its own."""

from __future__ import annotations

import importlib

import typer

from suture import __version__
from suture.cli.errors import SutureTyper, exit_codes_epilog
from suture.qemu import processes

app = SutureTyper(
    name="suture",
    help=(
        "Dependable remote firmware updates for medical IoT devices.\n\n"
        "Sign SUIT updates, run the hospital's scheduler and the vendor's repository, "
        "provision boards and simulate a whole ward."
    ),
    epilog=exit_codes_epilog(),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)

# Each module exposes ``register(app)``; the order here is the order of ``suture --help``.
COMMAND_MODULES = (
    "suture.cli.keys_cmd",
    "suture.cli.suit_cmd",
    "suture.cli.release_cmd",
    "suture.cli.delta_cmd",
    "suture.cli.bundle_cmd",
    "suture.cli.image_cmd",
    "suture.cli.firmware_cmd",
    "suture.cli.board_cmd",
    "suture.cli.scheduler_cmd",
    "suture.cli.vendor_cmd",
    "suture.cli.sim_cmd",
    "suture.cli.gateway_cmd",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"suture {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Dependable remote firmware updates for medical IoT devices."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point. SIGTERM ends a command like Ctrl-C would, through its
    ``finally`` blocks: a terminated ``suture sim --target qemu-…`` leaves no machine running."""
    processes.end_on_sigterm()
    app()
