"""The board tools' command lines in the docs (``esptool``, ``pyocd``, ``adafruit-nrfutil``),
parsed by the pinned tools' own parsers without running anything: esptool's and
adafruit-nrfutil's click groups, pyocd's argparse parser. A file an option reads is made empty in
a scratch folder (the parsers open them); a pyocd ``--target`` must be one pyocd builds in or
the target a board definition takes from a CMSIS pack; esptool's deprecated spellings
(``write_flash``, ``--flash_mode``) are refused, since esptool warns about them."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from suture.boards import board_names, load_board

# Arguments that name a file a parser may open.
FILE_SUFFIXES = {".bin", ".elf", ".hex", ".zip", ".uf2", ".img", ".pem", ".dat"}


class BoardToolCommandError(AssertionError):
    """A board tool's command line its own parser refuses."""


@contextlib.contextmanager
def _files_made(args: list[str]) -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory(prefix="doc-board-tool-") as tmp:
        out = []
        for arg in args:
            if not arg.startswith("-") and Path(arg).suffix in FILE_SUFFIXES:
                path = Path(tmp) / Path(arg).name
                path.touch()
                out.append(str(path))
            else:
                out.append(arg)
        yield out


def _parse_click(group: click.Group, prog: str, args: list[str]) -> None:
    """Parse ``prog ARGS`` down to the last subcommand, as the tool would before running it."""
    try:
        with group.make_context(prog, list(args)) as context:
            command: Any = group
            while isinstance(command, click.Group):
                rest = [*getattr(context, "_protected_args", []), *context.args]
                if not rest:
                    break
                name, sub, remaining = command.resolve_command(context, rest)
                if sub is None:
                    raise BoardToolCommandError(f"{prog}: no command {rest[0]!r}")
                command = sub
                context = sub.make_context(name or rest[0], remaining, parent=context)
            context.close()
    except click.exceptions.Exit as exc:
        if exc.exit_code != 0:
            raise BoardToolCommandError(f"{prog} exits {exc.exit_code}") from None
    except click.ClickException as exc:
        raise BoardToolCommandError(f"{prog}: {exc.format_message()}") from None


def check_esptool(args: list[str]) -> None:
    from esptool import cli
    from suture.boardops.esp import esptool_output

    cli._esp = None  # what EsptoolGroup.__call__ stores before it parses
    with _files_made(args) as made, esptool_output() as log, \
            contextlib.redirect_stdout(io.StringIO()):
        _parse_click(cli, "esptool", made)
    deprecated = [line for line in log.lines if line.startswith("Deprecated")]
    if deprecated:
        raise BoardToolCommandError(f"esptool: {'; '.join(deprecated)}")


def check_nrfutil(args: list[str]) -> None:
    from nordicsemi.__main__ import cli

    with _files_made(args) as made, contextlib.redirect_stdout(io.StringIO()):
        _parse_click(cli, "adafruit-nrfutil", made)


def _pack_targets() -> set[str]:
    found = set()
    for name in board_names():
        flashing = load_board(name).flashing
        if flashing.pyocd_pack is not None and flashing.pyocd_target is not None:
            found.add(flashing.pyocd_target)
    return found


def check_pyocd(args: list[str]) -> None:
    from pyocd.__main__ import PyOCDTool
    from pyocd.target import TARGET

    errors = io.StringIO()
    with _files_made(args) as made, contextlib.redirect_stderr(errors), \
            contextlib.redirect_stdout(io.StringIO()):
        try:
            parsed = PyOCDTool().build_parser().parse_args(made)
        except SystemExit as exc:
            if exc.code not in (0, None):
                lines = errors.getvalue().strip().splitlines()
                raise BoardToolCommandError(f"pyocd: {lines[-1] if lines else exc.code}"
                                            ) from None
            return
    target = getattr(parsed, "target_override", None)
    if target is not None and target not in TARGET and target not in _pack_targets():
        raise BoardToolCommandError(f"pyocd: no target {target!r} (not built in, and no board "
                                    "definition takes it from a CMSIS pack)")


BOARD_TOOLS: dict[str, Callable[[list[str]], None]] = {
    "esptool": check_esptool,
    "pyocd": check_pyocd,
    "adafruit-nrfutil": check_nrfutil,
}
