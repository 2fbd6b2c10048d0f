"""The plugin's options: the default target, bench targets that need a port, capabilities
that a bench lacks reported as skips with the reason, and an unknown target refused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
from pathlib import Path

import pytest

@pytest.mark.hil_needs("armed_power_cut")
def test_needs_armed_cut(hil_target):
    pass

def test_target(hil_target):
    assert hil_target.name == EXPECTED
"""


def _run(pytester: pytest.Pytester, expected: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_plugin_probe=TEST_FILE.replace("EXPECTED", repr(expected)))
    return pytester.runpytest("-p", "no:cacheprovider", "-rs", *args)


def test_the_default_target_is_the_simulator(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "sim")
    result.assert_outcomes(passed=2)


def test_a_bench_board_without_the_capability_skips_with_the_reason(
    pytester: pytest.Pytester,
) -> None:
    port = pytester.path / "ttyACM0"
    port.write_text("")
    result = _run(pytester, "rpi-pico", "--target", "rpi-pico", "--port", str(port))
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*target rpi-pico lacks armed_power_cut*"])


def test_a_bench_board_needs_a_port_and_a_known_name(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "rpi-pico", "--target", "rpi-pico")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--target rpi-pico is a real board: give --port*"])
    result = _run(pytester, "nope", "--target", "nope")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--target nope: no board named 'nope'*"])


SERVICE_TEST = """
from pathlib import Path

import pytest

pytestmark = pytest.mark.hil

def test_a_reset_whose_boot_line_is_missed(mpy_dut):
    # The unix port has no machine.reset(): the board keeps running and prints no boot line,
    # as when a USB board's line is gone before the port reopens. The state comes from the REPL.
    from suture.bundle import build_bundle
    from suture.devicectl import device_ops
    app = build_bundle({"main.py": b"def main(): pass"})
    device_ops.provision_app(mpy_dut.link, app, 1, blank=True)
    mpy_dut.boot_timeout_s = 1.0
    assert mpy_dut.hard_reset() == "CONFIRMED"
    assert mpy_dut.eval("2 + 2") == 4

def test_through_the_service(mpy_dut, request):
    service = request.getfixturevalue("serial")
    assert mpy_dut.link.transport.serial is service.proc
    assert mpy_dut.eval("6 * 7") == 42
    assert mpy_dut.board.name == "sim"
"""


def test_a_running_board_through_pytest_embedded_serial_service(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The bench path: --port with --embedded-services serial; the board here is a simulated
    one already running on its pty, as a real board runs before the suite starts."""
    from suture import keys
    from suture.devicectl.sim_target import SimTarget
    from suture.sim.testing import identity_for

    key = keys.generate_private_key("ES256")
    board = SimTarget(tmp_path / "dev", identity_for(keys.public_key_bytes(key.public_key())))
    board.create()
    board.power_on()
    try:
        pytester.makepyfile(test_service_probe=SERVICE_TEST)
        result = pytester.runpytest("-p", "no:cacheprovider", "--target", "sim", "--port",
                                    board.port, "--embedded-services", "serial", "-k",
                                    "through_the_service")
        reset = pytester.runpytest("-p", "no:cacheprovider", "--target", "sim", "--port",
                                   board.port, "-k", "missed")
    finally:
        board.close()
    result.assert_outcomes(passed=1)
    reset.assert_outcomes(passed=1)
