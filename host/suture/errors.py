"""The root of every error suture raises on purpose, and the exit codes of the ``suture`` CLI.

Each package has one family root beneath :class:`SutureError`; every error it raises on purpose
is that root or one of its subclasses, so a caller can catch one package's failures, or all of
suture's, with one ``except``:

- ``KeyFileError`` (``suture.keys``): key files
- ``BundleError`` (``suture.bundle``): application bundles
- ``BodyTooLargeError`` (``suture.bounded_body``): an HTTP request body past its bound
- ``SuitError`` (``suture.suit``): SUIT envelopes, manifests, descriptions
- ``CoseError`` (``suture.cose``): COSE_Sign1 and its CBOR (``CborError``)
- ``ImageError`` (``suture.image``): stage0 loader images
- ``FirmwareError`` (``suture.firmware``): the firmware build and device images
- ``BoardDefinitionError`` (``suture.boards``): board definitions
- ``BoardOpsError`` (``suture.boardops``): flashing, provisioning, deploying, local updates
- ``DeviceCtlError`` (``suture.devicectl``): a running board: its REPL (``LinkError``), ports
- ``SimError`` (``suture.sim``): the simulated board
- ``QemuError`` (``suture.qemu``): QEMU devices
- ``GatewayError`` (``suture.gateway``): the device-link gateway
- ``SchedulerError`` (``suture.scheduler``): the hospital's scheduler
- ``VendorServicesError`` (``suture.vendor_services``): the vendor's repository and GNAP server
- ``WardError`` (``suture.ward``): the ward simulator
- ``FormatDescriptionError`` (``suture.formats``): the on-flash format descriptions
- ``CliError`` (``suture.cli``): a command's own refusals (options that do not fit)

Classes that were ``ValueError`` or ``RuntimeError`` subclasses before keep that base too.

``exit_code`` is what the CLI exits with when the error ends a command (see :data:`EXIT_CODES`).
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_NOT_CONFIRMED: Final = 4
EXIT_INTERRUPTED: Final = 130

#: Every exit code of the ``suture`` CLI and what it means (shown by ``suture --help``).
EXIT_CODES: Final[tuple[tuple[int, str], ...]] = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "failed: refused or not done; the message says why"),
    (EXIT_USAGE, "usage: a wrong option or argument, a missing or unreadable file"),
    (EXIT_UNREACHABLE, "unreachable: a board or a server is absent, busy or silent"),
    (EXIT_NOT_CONFIRMED, "not confirmed: declined, or neither --yes nor a terminal"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


class SutureError(Exception):
    """Base of every error suture raises on purpose; the message says what and where."""

    exit_code: int = EXIT_FAILED


class UnreachableError(SutureError):
    """Something suture talks to is absent, busy or silent: a board, a port, a server."""

    exit_code: int = EXIT_UNREACHABLE
