"""The MicroPython DUT itself: REPL exec/eval, files, resets, boot wait, and the clear errors
for a board that is absent, busy or of another kind. Runs on every target (sim in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from suture.boards import load_board
from suture.devicectl import (
    BoardAbsentError,
    BoardBusyError,
    DeviceError,
    MicroPythonLink,
    WrongBoardError,
)
from suture.hil.dut import MicroPythonDut, transport_from_serial

pytestmark = pytest.mark.hil


def test_exec_and_eval(mpy_dut: MicroPythonDut) -> None:
    assert mpy_dut.exec("print(6 * 7)").strip() == "42"
    assert mpy_dut.eval("[1, 'two', b'\\x03']") == [1, "two", b"\x03"]
    with pytest.raises(DeviceError, match="ZeroDivisionError"):
        mpy_dut.exec("1 / 0")


def test_file_put_and_get_keep_every_byte(mpy_dut: MicroPythonDut) -> None:
    data = bytes(range(256)) * 9 + b"\x04\x03\r\n"
    remote = "hil/data.bin"  # relative to the board's working folder
    mpy_dut.put(data, remote)
    assert mpy_dut.get(remote) == data
    assert mpy_dut.link.sha256(remote) == __import__("hashlib").sha256(data).digest()
    mpy_dut.link.remove(remote)
    assert not mpy_dut.link.exists(remote)


def test_soft_reset_clears_the_heap_and_keeps_files(mpy_dut: MicroPythonDut) -> None:
    mpy_dut.exec("marker_value = 1234")
    mpy_dut.put(b"kept", "kept.txt")
    mpy_dut.soft_reset()
    assert mpy_dut.eval("'marker_value' in globals()") is False
    assert mpy_dut.get("kept.txt") == b"kept"


@pytest.mark.hil_needs("hard_reset")
def test_hard_reset_boots_again(mpy_dut: MicroPythonDut) -> None:
    boots = mpy_dut.boots
    state = mpy_dut.hard_reset()
    assert mpy_dut.boots == boots + 1
    assert state
    assert mpy_dut.boot_line.startswith("SUTURE-BOOT ")


def test_a_second_program_on_the_port_is_told_the_board_is_busy(
    mpy_dut: MicroPythonDut,
) -> None:
    with pytest.raises(BoardBusyError, match=r"is busy: another program holds the port"):
        MicroPythonLink.connect(mpy_dut.target.port)


def test_a_board_of_another_kind_is_refused(mpy_dut: MicroPythonDut) -> None:
    port = mpy_dut.target.port
    mpy_dut.link.close()
    other = "rpi-pico" if mpy_dut.board.name != "rpi-pico" else "pyboard-stm32f405"
    with pytest.raises(WrongBoardError, match=rf"the board at {port} is a .*, not a {other}"):
        MicroPythonLink.connect(port, load_board(other))


def test_an_absent_board_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ttyACM7"
    with pytest.raises(BoardAbsentError, match=rf"no board at {missing}: the port does not exist"):
        MicroPythonLink.connect(str(missing))


def test_a_port_that_is_not_a_serial_device(tmp_path: Path) -> None:
    fake = tmp_path / "ttyUSB0"
    fake.write_text("")
    with pytest.raises(BoardAbsentError, match=rf"no board at {fake}"):
        MicroPythonLink.connect(str(fake))


def test_over_pytest_embedded_serial_service(mpy_dut: MicroPythonDut, msg_queue: object) -> None:
    """The bench path: pytest-embedded's serial service owns the port, the DUT borrows it."""
    from pytest_embedded_serial.serial import Serial

    port = mpy_dut.target.port
    mpy_dut.link.close()
    service = Serial(msg_queue, port=port)
    try:
        service.stop_redirect_thread()
        link = MicroPythonLink(transport_from_serial(service.proc), port)
        link._enter(10)
        link.check_kind(mpy_dut.board)
        assert link.eval("sum(range(10))") == 45
        link.transport.exit_raw_repl()
    finally:
        service.close()


def test_an_application_that_never_returns_is_interrupted_after_its_log(
    mpy_dut: MicroPythonDut,
) -> None:
    from suture.bundle import build_bundle
    from suture.devicectl import device_ops

    forever = build_bundle({"main.py": (
        b"import time\ndef main():\n    n = 0\n    while True:\n"
        b"        print('agent: tick', n)\n        n += 1\n        time.sleep_ms(100)\n")})
    device_ops.provision_app(mpy_dut.link, forever, 1, blank=mpy_dut.boot_state == "BLANK")
    mpy_dut.app_log_timeout_s = 60.0
    assert mpy_dut.hard_reset(log_until=b"agent: tick 1") == "CONFIRMED"
    assert "agent: tick 0" in mpy_dut.link.boot_log
    assert mpy_dut.eval("1 + 1") == 2  # the REPL is ours again
