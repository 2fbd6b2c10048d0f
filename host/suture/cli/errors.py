"""How every `suture` command ends when it fails: one line on stderr and an exit code.

Commands raise; they never print an error themselves. :class:`SutureGroup` (the class of every
command group of the CLI) catches what a command raises and hands it to :func:`describe`:

- a :class:`~suture.errors.SutureError` (any package's family): its message and its
  ``exit_code``;
- a file that is missing or unreadable (``OSError`` naming a file): ``PATH: reason``, exit 2;
- a connection that fails (a scheduler, a vendor service, a database server): exit 3;
- settings that do not validate (pydantic): ``field: reason``, exit 2;
- Ctrl-C: exit 130.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from suture.errors import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    SutureError,
)

CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


class CliError(SutureError):
    """A command's own refusal: options that do not fit together, a value out of range."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """``text`` on one line: its non-blank lines joined with single spaces."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _os_error(exc: OSError) -> tuple[str, int]:
    reason = exc.strerror or str(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return reason, EXIT_UNREACHABLE
    if exc.filename is not None:
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(
            exc.filename)
        return f"{where}: {reason}", EXIT_USAGE
    return reason, EXIT_FAILED


def _library_error(exc: Exception) -> tuple[str, int] | None:
    """The libraries whose errors a command may let through: only those already imported."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        first: dict[str, Any] = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", exc))
        return (f"{where}: {msg}" if where else msg), EXIT_USAGE
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError):
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = EXIT_UNREACHABLE if isinstance(exc, sqlalchemy_exc.OperationalError) else (
            EXIT_FAILED)
        return f"database: {first_line}", code
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        code = EXIT_UNREACHABLE if isinstance(exc, httpx.TransportError) else EXIT_FAILED
        return f"HTTP: {exc}", code
    return None


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and the exit code of an expected failure; None for a bug."""
    if isinstance(exc, SutureError):
        return one_line(str(exc)) or type(exc).__name__, exc.exit_code
    if isinstance(exc, OSError):
        message, code = _os_error(exc)
        return one_line(message), code
    if isinstance(exc, Exception):
        found = _library_error(exc)
        if found is not None:
            return one_line(found[0]), found[1]
    return None


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, on one line whatever the terminal's width."""
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text.assemble(("error:", "red"), " ", message))


@contextmanager
def handled() -> Iterator[None]:
    """The CLI's one handler: an expected failure inside becomes ``error: MESSAGE`` on stderr
    and ``typer.Exit`` with its code; a bug goes on with its traceback. Every command runs
    inside it (:class:`SutureGroup`, :class:`SutureCommand`)."""
    try:
        yield
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        found = describe(exc)
        if found is None:
            raise
        print_error(found[0])
        raise typer.Exit(found[1]) from None


def _invoke(run: Callable[[], Any]) -> Any:
    with handled():
        return run()


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """A flag (``--json``, ``--yes``, ``--help``) shows no value type in the help: typer would
    show ``<bool>``, which reads as if it took ``true`` or ``false``."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class SutureGroup(TyperGroup):
    """A command group whose commands end with one line and an exit code when they fail.

    Commands and groups attached to it that typer built as plain ``TyperCommand`` and
    ``TyperGroup`` (a module that made its group with ``typer.Typer``) become
    :class:`SutureCommand` and :class:`SutureGroup`: every command of the CLI behaves alike.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            _adopt(command)

    def invoke(self, ctx: Any) -> Any:
        return _invoke(lambda: super(SutureGroup, self).invoke(ctx))

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class SutureCommand(TyperCommand):
    """A command of the CLI: it ends with one line and an exit code when it fails (also when it
    is run outside a :class:`SutureGroup`), and its flags show no value type."""

    def invoke(self, ctx: Any) -> Any:
        return _invoke(lambda: super(SutureCommand, self).invoke(ctx))

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


def _adopt(command: Any) -> None:
    if type(command) is TyperCommand:
        command.__class__ = SutureCommand
    elif type(command) is TyperGroup:
        command.__class__ = SutureGroup
        for sub in command.commands.values():
            _adopt(sub)


class SutureTyper(typer.Typer):
    """A command group of the CLI: a :class:`SutureGroup` whose commands are
    :class:`SutureCommand` unless told otherwise."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", SutureGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[CommandFunction], CommandFunction]:
        kwargs.setdefault("cls", SutureCommand)
        return super().command(*args, **kwargs)


def exit_codes_epilog() -> str:
    """The exit codes, for the root command's ``--help``."""
    rows = "\n".join(f"{code:>3}  {meaning}" for code, meaning in EXIT_CODES)
    return f"[bold]Exit codes[/bold]\n\n{rows}"
