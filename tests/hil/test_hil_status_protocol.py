"""The status protocol: a running loop on the board (the agent's side, here the reference
responder) answers status requests over the serial link while it keeps logging."""

from __future__ import annotations

import pytest
from suture.devicectl import board_code
from suture.devicectl.status_protocol import (
    StatusProtocolError,
    StatusWatcher,
    encode_request,
    parse_response,
    responder_call,
)
from suture.hil.dut import MicroPythonDut
from suture.sim.testing import example_app

pytestmark = pytest.mark.hil


def test_request_and_response_lines() -> None:
    assert encode_request(7, ["state", "journal"]) == (
        b'\x1eSUTURE-STATUS? {"id":7,"get":["state","journal"]}\n')
    with pytest.raises(ValueError, match="unknown status groups: colour"):
        encode_request(1, ["colour"])
    assert parse_response(b"APP 1\r\n") is None
    assert parse_response(b'\x1eSUTURE-STATUS {"id":3,"state":"IDLE"}\n') == {
        "id": 3, "state": "IDLE"}
    with pytest.raises(StatusProtocolError, match="malformed status line"):
        parse_response(b"\x1eSUTURE-STATUS {nope\n")
    with pytest.raises(StatusProtocolError, match="integer id"):
        parse_response(b'\x1eSUTURE-STATUS ["id"]\n')


def test_watch_a_running_board_without_stopping_it(mpy_dut: MicroPythonDut) -> None:
    from suture.devicectl import device_ops
    from suture.formats import identity

    device_ops.provision_app(mpy_dut.link, example_app(1), 1, blank=True)
    device_ops.put_nvm(mpy_dut.link, [(identity.ID_DEVICE, b"watch-me")])
    transport = mpy_dut.link.transport
    transport.exec_raw_no_follow(board_code.program(
        [board_code.LOADER_STATUS, board_code.STATUS_RESPONDER],
        responder_call(3, "loader_status")))
    watcher = StatusWatcher(transport.serial)
    first = watcher.request(["state", "versions", "identity"])
    assert (first["state"], first["installed_version"]) == ("CONFIRMED", 1)
    assert first["device_id"] == "watch-me"
    assert "journal" not in first
    second = watcher.request(["journal", "agent"])
    assert second["journal"] == [[1, "CONFIRMED", 1]]
    assert second["agent"] == {"phase": "idle"}
    assert second["id"] == first["id"] + 1
    watcher.request(["state"])
    assert any(line.startswith("agent: tick") for line in watcher.log)  # it kept running
    # The loop ended by itself: its raw-REPL reply closes with an empty error part.
    rest = watcher.take_pending()
    if b"\x04\x04" not in rest:
        rest += transport.read_until(1, b"\x04\x04", timeout=10)
    assert b"\x04\x04" in rest
    assert b"Traceback" not in rest
    said = "\n".join([*watcher.log, rest.decode(errors="replace")])
    assert board_code.result(said) == {"served": 3}
