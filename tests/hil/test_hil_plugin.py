"""The plugin's options: the default target, bench targets that need a port, capabilities
that a bench lacks reported as skips with the reason, and an unknown target refused."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
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
