"""The pytest plugin of suture's HIL suite (registered as the ``suture_hil`` pytest11 entry).

Options (``--target`` and ``--port`` are pytest-embedded's own, shared):

- ``--target NAME``: a board definition: ``sim`` (the default), a real board such as
  ``rpi-pico`` (needs ``--port``), or a QEMU board: ``qemu-mps2-an385`` runs the same
  MicroPython scenarios on the real firmware under stage0 (built once per run) and stage0's own
  tests (the ``qemu_board`` fixture); ``qemu-mps2-an505`` runs stage0's tests only.
- ``--port /dev/ttyACM0``: the real board's USB serial port. With pytest-embedded's serial
  service (``--embedded-services serial``) the port is opened by that service and the DUT talks
  through it.
- ``--hil-power-hook CMD``: a command the plugin runs as ``CMD off`` / ``CMD on`` to cut and
  restore the bench board's power.
- ``--hil-vendor-key PEM``: the vendor signing key the board trusts (real boards; the simulator
  is provisioned with a key generated for the session).

Fixtures: ``hil_target`` (the target, powered off), ``mpy_dut`` (the booted
:class:`~suture.hil.dut.MicroPythonDut`), ``hil_vendor_key``, ``hil_identity``.
Marker: ``@pytest.mark.hil_needs("power_cut", ...)`` skips, with the reason, on a target
that lacks a capability (the simulator has every one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from suture import keys
from suture.boards import BoardDefinitionError, load_board
from suture.devicectl.qemu_firmware_target import QemuFirmwareHilTarget
from suture.devicectl.qemu_target import QemuStage0Target, QemuTargetError
from suture.devicectl.targets import BenchHilTarget, HilTarget, SimHilTarget
from suture.firmware.qemu_build import (
    FIRMWARE_BOARDS,
    QemuFirmware,
    QemuFirmwareError,
    prepare_firmware,
)
from suture.hil.dut import MicroPythonDut
from suture.keys import PrivateKey
from suture.sim import DeviceIdentity
from suture.sim.testing import CLASS_ID, VENDOR_ID, identity_for

DEFAULT_TARGET = "sim"
_NOT_RUN = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("suture-hil", "suture hardware-in-the-loop")
    # --target and --port are pytest-embedded's options (a pinned dependency, always loaded).
    group.addoption("--hil-power-hook", default=None,
                    help="command run as 'CMD off' / 'CMD on' to switch the bench board's power")
    group.addoption("--hil-vendor-key", default=None,
                    help="PEM file of the vendor signing key the bench board trusts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hil_needs(*capabilities): the test needs these target capabilities"
    )
    config.addinivalue_line(
        "markers",
        "hil_targets(*kinds): the kinds of target a hil test exists for (sim, bench, qemu; "
        "default: sim and bench, the MicroPython boards)",
    )


def target_name(config: pytest.Config) -> str:
    """The ``--target`` given, or ``sim``."""
    value = config.getoption("target", default=None)
    return str(value) if value else DEFAULT_TARGET


def target_kind(config: pytest.Config) -> str:
    """``sim``, ``qemu`` (stage0 in QEMU) or ``bench`` (a real board)."""
    name = target_name(config)
    if name == "sim" and not config.getoption("port", default=None):
        return "sim"
    return "qemu" if name.startswith("qemu-") else "bench"


def _capabilities(config: pytest.Config) -> frozenset[str]:
    kind = target_kind(config)
    if kind == "sim":
        return SimHilTarget.capabilities
    if kind == "qemu":
        if target_name(config) in FIRMWARE_BOARDS:
            return QemuStage0Target.capabilities | QemuFirmwareHilTarget.capabilities
        return QemuStage0Target.capabilities
    caps = {"hard_reset"}
    if config.getoption("hil_power_hook", default=None):
        caps.add("power_cut")
    return frozenset(caps)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    caps = _capabilities(config)
    name = target_name(config)
    kind = target_kind(config)
    # A hil test exists only for the kinds of target it names: the others do not collect it
    # (so the simulator never skips a QEMU-only test, nor QEMU a MicroPython one).
    # A QEMU board with firmware runs the MicroPython scenarios too; there, a scenario that
    # needs what QEMU cannot give is not collected, and the run says why (no skips in CI).
    default_kinds = ("sim", "bench", "qemu") if name in FIRMWARE_BOARDS else ("sim", "bench")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    not_run: list[str] = []
    for item in items:
        kinds_marker = item.get_closest_marker("hil_targets")
        kinds = kinds_marker.args if kinds_marker else default_kinds
        needs = item.get_closest_marker("hil_needs")
        missing = [c for c in needs.args if c not in caps] if needs else []
        if item.get_closest_marker("hil") is not None and kind not in kinds:
            dropped.append(item)
        elif kind == "qemu" and missing:
            dropped.append(item)
            not_run.append(f"{item.nodeid}: target {name} lacks {', '.join(missing)}")
        else:
            keep.append(item)
            if missing:
                item.add_marker(pytest.mark.skip(
                    reason=f"target {name} lacks {', '.join(missing)}"))
    config.stash[_NOT_RUN] = not_run
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    not_run = config.stash.get(_NOT_RUN, [])
    if not_run:
        terminalreporter.section("hil scenarios this target cannot run")
        for line in not_run:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def hil_qemu_firmware(pytestconfig: pytest.Config) -> QemuFirmware:
    """stage0 and the signed firmware of the QEMU board given with ``--target``, built once."""
    name = target_name(pytestconfig)
    try:
        return prepare_firmware(load_board(name), str(VENDOR_ID), str(CLASS_ID))
    except (BoardDefinitionError, QemuFirmwareError) as exc:
        raise pytest.UsageError(f"--target {name}: {exc}") from None


@pytest.fixture(scope="session")
def hil_vendor_key(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> PrivateKey:
    """The vendor key the target trusts: ``--hil-vendor-key``, the QEMU firmware's development
    key, or one made for the session (the simulator)."""
    path = pytestconfig.getoption("hil_vendor_key", default=None)
    if path:
        return keys.load_private_key(Path(path))
    if target_name(pytestconfig) in FIRMWARE_BOARDS:
        firmware: QemuFirmware = request.getfixturevalue("hil_qemu_firmware")
        return firmware.vendor_key
    return keys.generate_private_key("ES256")


@pytest.fixture(scope="session")
def hil_identity(hil_vendor_key: PrivateKey) -> DeviceIdentity:
    """Vendor, class and trusted keys of the simulated board."""
    return identity_for(keys.public_key_bytes(hil_vendor_key.public_key()))


@pytest.fixture
def hil_target(
    pytestconfig: pytest.Config, tmp_path: Path, hil_identity: DeviceIdentity,
    request: pytest.FixtureRequest,
) -> Iterator[HilTarget]:
    """The target of this run, powered off: a fresh simulated board, or the bench board."""
    name = target_name(pytestconfig)
    try:
        board = load_board(name)
    except BoardDefinitionError as exc:
        raise pytest.UsageError(f"--target {name}: {exc}") from None
    target: HilTarget
    if target_kind(pytestconfig) == "qemu":
        if name not in FIRMWARE_BOARDS:
            raise pytest.UsageError(f"--target {name} runs stage0 only: its tests use "
                                    "qemu_board")
        firmware: QemuFirmware = request.getfixturevalue("hil_qemu_firmware")
        qemu = QemuFirmwareHilTarget(board, tmp_path / "qemu", firmware, hil_identity)
        try:
            yield qemu
        finally:
            qemu.close()
        return
    port = pytestconfig.getoption("port", default=None)
    if name == "sim" and not port:
        target = SimHilTarget(board, tmp_path / "device", hil_identity)
    else:
        # A real board, or a simulated board already running on the pty given with --port.
        if not port:
            raise pytest.UsageError(f"--target {name} is a real board: give --port")
        target = BenchHilTarget(board, str(port), pytestconfig.getoption("hil_power_hook"))
    try:
        yield target
    finally:
        target.close()


@pytest.fixture
def qemu_board(pytestconfig: pytest.Config, tmp_path: Path) -> QemuStage0Target:
    """stage0 of the QEMU board given with ``--target qemu-mps2-…``."""
    name = target_name(pytestconfig)
    try:
        return QemuStage0Target(load_board(name), tmp_path / "qemu")
    except (BoardDefinitionError, QemuTargetError) as exc:
        raise pytest.UsageError(f"--target {name}: {exc}") from None


def _embedded_services(config: pytest.Config) -> list[str]:
    value = config.getoption("embedded_services", default="") or ""
    return [s.strip() for s in str(value).split(",") if s.strip()]


@pytest.fixture
def mpy_dut(
    hil_target: HilTarget, request: pytest.FixtureRequest
) -> Iterator[MicroPythonDut]:
    """The booted board with its REPL open. With ``--embedded-services serial`` the REPL goes
    through the port pytest-embedded's serial service opened (its log redirection paused)."""
    serial_port = None
    if "serial" in _embedded_services(request.config) and "fresh_board" not in (
        hil_target.capabilities
    ):
        service = request.getfixturevalue("serial")
        service.stop_redirect_thread()
        serial_port = service.proc
    dut = MicroPythonDut(hil_target, serial_port=serial_port)
    dut.start()
    try:
        yield dut
    finally:
        dut.close()
