"""What the host asks a running board to do over its REPL, through the loader's API.

Every operation sends the board-side modules it needs (``board_side/``, see
:mod:`suture.devicectl.board_code`) with one call, streams any host data through the same link,
and parses the board's ``SUTURE-JSON`` line. The same functions serve the simulated board and a
real one, the CLI (`suture board …`) and the HIL tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from suture.devicectl import board_code
from suture.devicectl.board_code import call, literal
from suture.devicectl.repl import LinkError, MicroPythonLink, Progress
from suture.formats.identity import (
    ID_CREDENTIAL,
    ID_DEVICE,
    ID_KEY,
    ID_SCHEDULER_URL,
    TRUST_SCHEDULER,
    TRUST_VENDOR,
)

# NVM keys of the device identity (schema 1), defined in suture.formats.identity.
IDENTITY_KEYS = (ID_DEVICE, ID_KEY, ID_SCHEDULER_URL, ID_CREDENTIAL, TRUST_VENDOR, TRUST_SCHEDULER)


def run(
    link: MicroPythonLink,
    modules: Sequence[str],
    expression: str,
    streams: Sequence[bytes] = (),
    progress: Progress | None = None,
    timeout_s: float = 60,
) -> dict[str, Any]:
    """Send ``modules``, evaluate ``expression`` on the board and return its result (a dict).
    With ``streams``, ``HostStream(i, len(streams[i]))`` reads ``streams[i]`` from the host."""
    if streams:
        code = board_code.program([board_code.HOST_STREAM, *modules], expression)
        output = link.exec_with_streams(code, streams, progress=progress)
    else:
        output = link.exec(board_code.program(modules, expression), timeout_s=timeout_s)
    answer = board_code.result(output)
    if answer is None:
        raise LinkError(f"the board gave no result line: {output.strip()[-300:]!r}")
    return answer


def _host_stream(index: int, data: bytes) -> str:
    return call("HostStream", literal(index), literal(len(data)))


def status(link: MicroPythonLink) -> dict[str, Any]:
    """The board's update status: journal state, versions, NVM keys, device id, journal."""
    return run(link, [board_code.LOADER_STATUS], call("loader_status"))


def provision_app(
    link: MicroPythonLink,
    bundle: bytes,
    version: int,
    *,
    blank: bool,
    progress: Progress | None = None,
) -> int:
    """Install a first application bundle, formatting littlefs first on a ``blank`` board (one
    that booted without a filesystem); the installed version."""
    expression = call("provision_app", _host_stream(0, bundle), literal(len(bundle)),
                      literal(int(version)), literal(bool(blank)))
    answer = run(link, [board_code.PROVISIONING], expression, [bundle], progress)
    return int(answer["installed_version"])


def stage(
    link: MicroPythonLink,
    envelope: bytes,
    payload: bytes,
    *,
    install: bool = True,
    progress: Progress | None = None,
) -> int:
    """Verify a signed envelope on the board and stage its payload; the staged version.

    The board verifies the envelope before writing anything and the payload's digest while it
    writes: an unsigned or altered update raises :class:`~suture.devicectl.repl.DeviceError`.
    """
    expression = call("stage", _host_stream(0, envelope), _host_stream(1, payload),
                      literal(bool(install)))
    answer = run(link, [board_code.UPDATE], expression, [envelope, payload], progress)
    return int(answer["staged_version"])


def put_nvm(link: MicroPythonLink, records: Sequence[tuple[str, bytes]]) -> int:
    """Write NVM records (schema 1); how many were written."""
    pairs = [(key, value.hex()) for key, value in records]
    answer = run(link, [board_code.PROVISIONING], call("put_nvm", literal(pairs)))
    return int(answer["written"])


def decommission(link: MicroPythonLink) -> dict[str, Any]:
    """Erase the application filesystem (its files, then its free space overwritten) and the
    journal, NVM, staging and backup regions, and read them back: the board's report
    (:func:`suture.boardops.decommission.check_erase` checks it). Erasing a large external flash
    takes a while on a real board: up to ten minutes are allowed."""
    return run(link, [board_code.DECOMMISSION], call("decommission"), timeout_s=600)


def fs_files(link: MicroPythonLink) -> list[tuple[str, int]]:
    """Every file in the board's application filesystem and its size."""
    files = run(link, [board_code.DECOMMISSION], call("fs_files"))["files"]
    return [(str(path), int(size)) for path, size in files]


def confirm(link: MicroPythonLink) -> str:
    """Confirm the trial version; the journal state after."""
    return str(run(link, [board_code.UPDATE], call("confirm"))["state"])


def request_revert(link: MicroPythonLink) -> str:
    """Ask for the previous version at the next boot; the journal state after."""
    return str(run(link, [board_code.UPDATE], call("request_revert"))["state"])


def app_digests(link: MicroPythonLink, paths: Sequence[str]) -> tuple[str, dict[str, str | None]]:
    """The application folder on the board and the SHA-256 (hex) of each of ``paths`` in it
    (None for a file that is not there)."""
    answer = run(link, [board_code.APP_TREE], call("app_digests", literal(sorted(paths))))
    digests = {str(k): (None if v is None else str(v)) for k, v in answer["digests"].items()}
    return str(answer["root"]), digests


def accept_developer_tree(link: MicroPythonLink) -> str:
    """Record the application tree now on the board as the one the loader runs (kept NVM
    ``dev.tree``, development boards); its digest (hex)."""
    return str(run(link, [board_code.APP_TREE], call("accept_developer_tree"))["dev_tree"])
