"""One exception root (suture.errors.SutureError) with one family root per package, and one
handler in the CLI that turns a failure into one line and an exit code: a missing or
unreadable file never prints a traceback."""

from __future__ import annotations

import errno
import importlib
import inspect
import pkgutil
from pathlib import Path

import httpx
import pytest
import suture
from pydantic import BaseModel, ValidationError
from suture.cli.errors import CliError, describe
from suture.cli.main import app
from suture.errors import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_NOT_CONFIRMED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    SutureError,
)
from typer.testing import CliRunner

# package -> its family root (module, class name). Every exception class a module of the
# package defines must descend from it.
FAMILIES = {
    "suture.keys": ("suture.keys", "KeyFileError"),
    "suture.bundle": ("suture.bundle", "BundleError"),
    "suture.bounded_body": ("suture.bounded_body", "BodyTooLargeError"),
    "suture.suit": ("suture.suit.errors", "SuitError"),
    "suture.cose": ("suture.cose.errors", "CoseError"),
    "suture.image": ("suture.image.errors", "ImageError"),
    "suture.firmware": ("suture.firmware.errors", "FirmwareError"),
    "suture.boards": ("suture.boards.load", "BoardDefinitionError"),
    "suture.boardops": ("suture.boardops.errors", "BoardOpsError"),
    "suture.devicectl": ("suture.devicectl.errors", "DeviceCtlError"),
    "suture.sim": ("suture.sim.errors", "SimError"),
    "suture.qemu": ("suture.qemu.device", "QemuError"),
    "suture.gateway": ("suture.gateway.frames", "GatewayError"),
    "suture.scheduler": ("suture.scheduler.errors", "SchedulerError"),
    "suture.vendor_services": ("suture.vendor_services.errors", "VendorServicesError"),
    "suture.ward": ("suture.ward.errors", "WardError"),
    "suture.formats": ("suture.formats.journal", "FormatDescriptionError"),
    "suture.cli": ("suture.cli.errors", "CliError"),
    "suture.delta": ("suture.delta.errors", "DeltaError"),
}
# MicroPython source kept in the host package (sent to a board, never imported by CPython),
# and alembic's migration scripts (run by alembic alone).
NOT_IMPORTABLE = ("suture.devicectl.board_side", "suture.scheduler.migrations")


def _family(module: str) -> str | None:
    return next((p for p in sorted(FAMILIES, key=len, reverse=True)
                 if module == p or module.startswith(p + ".")), None)


def _exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(suture.__path__, "suture."):
        if info.name.startswith(NOT_IMPORTABLE):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__ != \
                    "suture.errors":
                found.append(cls)
    return found


EXCEPTIONS = _exception_classes()


def test_the_walk_finds_the_packages_errors() -> None:
    names = {c.__name__ for c in EXCEPTIONS}
    assert {"SuitError", "CborError", "LinkError", "MirrorError", "BiscuitError",
            "WardConfigError", "UnknownBoardError"} <= names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_descends_from_its_package_family(cls: type[BaseException]) -> None:
    family = _family(cls.__module__)
    assert family is not None, f"{cls.__module__}: no family root for this package"
    module, name = FAMILIES[family]
    root = getattr(importlib.import_module(module), name)
    assert issubclass(cls, root), f"{cls.__module__}.{cls.__name__} is not a {name}"
    assert issubclass(cls, SutureError)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_root_is_directly_under_suture_error(family: str) -> None:
    module, name = FAMILIES[family]
    root = getattr(importlib.import_module(module), name)
    assert SutureError in root.__mro__[1:3], root.__mro__


def test_former_builtin_bases_are_kept() -> None:
    from suture.bundle import BundleError
    from suture.image import ImageFormatError
    from suture.sim import SimError
    from suture.vendor_services.biscuits import BiscuitError

    assert issubclass(BundleError, ValueError)
    assert issubclass(ImageFormatError, ValueError)
    assert issubclass(BiscuitError, ValueError)
    assert issubclass(SimError, RuntimeError)


class _Settings(BaseModel):
    port: int


def _validation_error() -> ValidationError:
    try:
        _Settings(port="eighty")  # type: ignore[arg-type]
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


@pytest.mark.parametrize(("exc", "message", "code"), [
    (CliError("options that do not fit", EXIT_USAGE), "options that do not fit", EXIT_USAGE),
    (SutureError("first line\n  second line"), "first line second line", EXIT_FAILED),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "app.suit"),
     "app.suit: No such file or directory", EXIT_USAGE),
    (PermissionError(errno.EACCES, "Permission denied", "key.pem"),
     "key.pem: Permission denied", EXIT_USAGE),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "Connection refused",
     EXIT_UNREACHABLE),
    (httpx.ConnectError("all connection attempts failed"),
     "HTTP: all connection attempts failed", EXIT_UNREACHABLE),
    (_validation_error(), "port: Input should be a valid integer", EXIT_USAGE),
])
def test_describe_gives_one_line_and_the_exit_code(exc: BaseException, message: str,
                                                   code: int) -> None:
    found = describe(exc)
    assert found is not None
    assert found[0].startswith(message), found
    assert "\n" not in found[0]
    assert found[1] == code


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("x"), TypeError("y")])
def test_a_bug_keeps_its_traceback(exc: Exception) -> None:
    assert describe(exc) is None


def test_an_absent_board_is_unreachable() -> None:
    from suture.devicectl.repl import BoardAbsentError, BoardBusyError, WrongBoardError

    assert BoardAbsentError.exit_code == BoardBusyError.exit_code == EXIT_UNREACHABLE
    assert WrongBoardError.exit_code == EXIT_FAILED


def test_the_exit_codes_are_distinct_and_documented() -> None:
    codes = [code for code, _ in EXIT_CODES]
    assert len(codes) == len(set(codes))
    assert {EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_CONFIRMED} <= set(codes)


# Commands given a file that does not exist: one line on stderr, exit 2, no traceback.
MISSING = "no-such-file.bin"
MISSING_FILE_COMMANDS = [
    ("suit", "verify", MISSING, "--key", MISSING),
    ("suit", "inspect", MISSING),
    ("suit", "sign", MISSING, "--key", MISSING, "--out", "x.suit"),
    ("bundle", "inspect", MISSING),
    ("image", "inspect", MISSING),
    ("image", "provision", "--key", MISSING, "--out", "x.bin"),
    ("board", "update", "sim", MISSING, MISSING, "--device", "dev"),
    ("vendor", "client", "add", "x", "--key", MISSING, "--data", "vendor"),
    ("vendor", "publish", "r-1", "--description", MISSING, "--key", MISSING, "--sbom", MISSING,
     "--notes", MISSING, "--data", "vendor"),
]


@pytest.mark.parametrize("args", MISSING_FILE_COMMANDS, ids=[" ".join(a[:2]) for a in
                                                             MISSING_FILE_COMMANDS])
def test_a_missing_file_is_one_line_and_exit_2(args: tuple[str, ...], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert MISSING in lines[0]
