"""What every command group shares: the --json, --yes and --dry-run options, JSON output and
the confirmation a destructive command asks for."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from suture.cli.errors import CliError
from suture.errors import EXIT_NOT_CONFIRMED

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of text.")]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Do it without asking (without a terminal, nothing is done unless given).")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Say what would be done, and change nothing.")]


def emit_json(data: Any) -> None:
    """One JSON document on stdout (indented, keys in their order)."""
    typer.echo(json.dumps(data, indent=2))


def stdin_is_terminal() -> bool:
    """Whether someone can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


def confirm(question: str, *, yes: bool) -> None:
    """Go on only with --yes, or when someone answers yes at the terminal.

    Raises :class:`CliError` (exit 4) when the answer is no, or when there is neither --yes nor a
    terminal to ask on: a script never changes anything it was not told to.
    """
    if yes:
        return
    if not stdin_is_terminal():
        raise CliError(f"{question} Not done: give --yes (there is no terminal to ask on)",
                       EXIT_NOT_CONFIRMED)
    try:
        agreed = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        agreed = False
    if not agreed:
        raise CliError("not confirmed: nothing was changed", EXIT_NOT_CONFIRMED)
