"""The status protocol: watch a running board without stopping it (docs/hil.md).

While the update agent runs, the host cannot use the raw REPL (entering it interrupts the
agent). Instead it writes one request line on the serial link and the agent, which polls its
input between steps, answers with one line; everything else the board prints is its log.

Request (host to board)::

    \\x1eSUTURE-STATUS? {"id": 7, "get": ["state", "versions", "journal"]}\\n

Response (board to host)::

    \\x1eSUTURE-STATUS {"id": 7, "state": "TRIAL", ..., "installed_version": 2, ...}\\n

or ``{"id": 7, "error": "..."}``. The leading 0x1E (ASCII record separator) keeps the lines
apart from anything a person types or the application prints. :data:`GROUPS` lists the fields
of each group; a board answers the groups it knows and ignores the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import serial

from suture.devicectl.board_code import call, literal
from suture.devicectl.repl import LinkError

REQUEST_PREFIX = b"\x1eSUTURE-STATUS? "
RESPONSE_PREFIX = b"\x1eSUTURE-STATUS "
# Longest line either side sends; a longer one is a protocol error, not a reason to grow memory.
MAX_LINE = 4096

GROUPS: dict[str, tuple[str, ...]] = {
    "state": ("state", "component", "seq", "boot_count", "flags", "progress"),
    "versions": ("installed_version", "installed_digest", "backup_version", "version"),
    "journal": ("journal",),
    "identity": ("device_id",),
    "agent": ("agent",),
}


def responder_call(count: int, read_status: str) -> str:
    """The call that runs the reference responder (``board_side/status_responder.py``) for
    ``count`` requests, answering from ``read_status()`` (a MicroPython expression) with the
    fields of :data:`GROUPS` (``agent`` is answered ``{"phase": "idle"}``)."""
    fields = {group: list(names) for group, names in GROUPS.items() if group != "agent"}
    return call("serve_status", literal(int(count)), read_status, literal(fields))


class StatusProtocolError(LinkError):
    """A malformed status line, or no answer in time."""


def encode_request(request_id: int, groups: Sequence[str]) -> bytes:
    """The request line for ``groups`` (names from :data:`GROUPS`)."""
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown status groups: {', '.join(unknown)}")
    body = json.dumps({"id": int(request_id), "get": list(groups)}, separators=(",", ":"))
    return REQUEST_PREFIX + body.encode() + b"\n"


def parse_response(line: bytes) -> dict[str, Any] | None:
    """The answer in a response line; None for a line that is not one (log output)."""
    line = line.rstrip(b"\r\n")
    if not line.startswith(RESPONSE_PREFIX):
        return None
    if len(line) > MAX_LINE:
        raise StatusProtocolError(f"status line of {len(line)} bytes (at most {MAX_LINE})")
    try:
        value = json.loads(line[len(RESPONSE_PREFIX) :])
    except ValueError as exc:
        raise StatusProtocolError(f"malformed status line: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("id"), int):
        raise StatusProtocolError("a status answer is a JSON object with an integer id")
    return value


class StatusWatcher:
    """Ask a running board for its status over an open serial port; keep its log lines."""

    def __init__(self, port: serial.SerialBase) -> None:
        self.port = port
        self.log: list[str] = []
        self._next_id = 1
        self._pending = b""

    def _lines(self, deadline: float) -> bytes | None:
        while time.monotonic() < deadline:
            cut = self._pending.find(b"\n")
            if cut >= 0:
                line, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
                return line
            if len(self._pending) > MAX_LINE:
                raise StatusProtocolError(f"a line longer than {MAX_LINE} bytes from the board")
            chunk = self.port.read(max(1, self.port.in_waiting))
            self._pending += chunk
        return None

    def take_pending(self) -> bytes:
        """Bytes read past the last answer (to hand the port back to another reader)."""
        data, self._pending = self._pending, b""
        return data

    def request(
        self, groups: Sequence[str] = tuple(GROUPS), timeout_s: float = 5.0
    ) -> dict[str, Any]:
        """Send one request and return the matching answer (other lines go to :attr:`log`)."""
        request_id = self._next_id
        self._next_id += 1
        self.port.write(encode_request(request_id, groups))
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._lines(deadline)
            if line is None:
                raise StatusProtocolError(
                    f"no status answer within {timeout_s:.0f} s: is the agent running?"
                )
            answer = parse_response(line)
            if answer is None:
                self.log.append(line.decode(errors="replace").rstrip("\r\n"))
                continue
            if answer["id"] != request_id:
                continue  # a late answer to an earlier request
            if "error" in answer:
                raise StatusProtocolError(f"the board answered: {answer['error']}")
            return answer
