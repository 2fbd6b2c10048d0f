"""What the host asks a running board to do over its REPL, through the loader's API.

Every operation sends a snippet of :mod:`suture.devicectl.device_code`, streams any host data
through the same link, and parses the board's ``SUTURE-JSON`` line. The same functions serve the
simulated board and a real one, the CLI (`suture board …`) and the HIL tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from suture.devicectl import device_code
from suture.devicectl.repl import LinkError, MicroPythonLink, Progress

# NVM keys of the device identity (schema 1). Values are bytes; text is UTF-8.
ID_DEVICE = "id.device"  # the device id the scheduler knows it by
ID_KEY = "id.key"  # the device's private key: P-256 scalar, 32 bytes big-endian
ID_SCHEDULER_URL = "id.scheduler"  # the scheduler's base URL
ID_CREDENTIAL = "id.credential"  # the device secret the scheduler issued (32 bytes)
TRUST_VENDOR = "trust.vendor"  # vendor SUIT signing keys: 65-byte SEC1 points, concatenated
TRUST_SCHEDULER = "trust.scheduler"  # scheduler schedule-signing keys, same encoding
IDENTITY_KEYS = (ID_DEVICE, ID_KEY, ID_SCHEDULER_URL, ID_CREDENTIAL, TRUST_VENDOR, TRUST_SCHEDULER)


def _result(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith(device_code.RESULT):
            value = json.loads(line[len(device_code.RESULT) :])
            if isinstance(value, dict):
                return value
    raise LinkError(f"the board gave no result line: {output.strip()[-300:]!r}")


def run(
    link: MicroPythonLink,
    code: str,
    streams: Sequence[bytes] = (),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run a snippet and return its JSON result."""
    if streams:
        output = link.exec_with_streams(device_code.HOST_STREAM + code, streams, progress=progress)
    else:
        output = link.exec(code, timeout_s=60)
    return _result(output)


def status(link: MicroPythonLink) -> dict[str, Any]:
    """The board's update status: journal state, versions, NVM keys, device id, journal."""
    return run(link, device_code.STATUS)


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
    code = device_code.PROVISION_APP.format(
        size=len(bundle), version=int(version), blank=bool(blank)
    )
    return int(run(link, code, [bundle], progress)["installed_version"])


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
    code = device_code.STAGE.format(
        envelope_size=len(envelope), payload_size=len(payload), install=bool(install)
    )
    return int(run(link, code, [envelope, payload], progress)["staged_version"])


def put_nvm(link: MicroPythonLink, records: Sequence[tuple[str, bytes]]) -> int:
    """Write NVM records (schema 1); how many were written."""
    pairs = [(key, value.hex()) for key, value in records]
    return int(run(link, device_code.PUT_NVM.format(records=pairs))["written"])


def erase_device_data(link: MicroPythonLink) -> list[tuple[str, int]]:
    """Erase the NVM store, staging, backup and journal regions; (region, bytes) erased."""
    done = run(link, device_code.ERASE_DEVICE_DATA)["erased"]
    return [(str(name), int(size)) for name, size in done]


def confirm(link: MicroPythonLink) -> str:
    """Confirm the trial version; the journal state after."""
    return str(run(link, device_code.CONFIRM)["state"])


def request_revert(link: MicroPythonLink) -> str:
    """Ask for the previous version at the next boot; the journal state after."""
    return str(run(link, device_code.REQUEST_REVERT)["state"])
