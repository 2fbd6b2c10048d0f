"""HIL targets: what a test runs against, and what each can do.

- :class:`SimHilTarget`: the simulated board (``--target sim``): every capability, including a
  power cut armed to strike after N flash operations.
- :class:`BenchHilTarget`: a real board on the bench (``--target rpi-pico --port /dev/ttyACM0``),
  reset through ``machine.reset()``, power cut through an optional power-switch hook: a command
  run as ``HOOK off`` and ``HOOK on`` (``--hil-power-hook``, see docs/hil.md).

A capability a test needs is declared with ``@pytest.mark.hil_needs("name")``; a target
without it deselects the test with the reason (the simulator has them all).
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from pathlib import Path
from typing import Protocol

import serial
from mpremote.transport import TransportError

from suture.boards.schema import Board
from suture.devicectl.repl import LinkError, MicroPythonLink
from suture.devicectl.sim_target import SimTarget, arm_power_cut
from suture.devicectl.simport import wait_for_port
from suture.sim import DeviceIdentity

# Capabilities a test can require.
POWER_CUT = "power_cut"  # cut the supply now
ARMED_POWER_CUT = "armed_power_cut"  # cut after N flash operations, mid-operation
HARD_RESET = "hard_reset"
FRESH_BOARD = "fresh_board"  # each test starts from blank flash
LOOPBACK_NETWORK = "loopback_network"  # the board reaches a scheduler on the test machine
FLASH_SNAPSHOT = "flash_snapshot"  # the flash can be saved and put back while powered off


class HilTarget(Protocol):
    """What the plugin needs from a target."""

    name: str
    board: Board
    capabilities: frozenset[str]

    @property
    def port(self) -> str: ...

    def power_on(self) -> None: ...

    def power_cut(self) -> None: ...

    def hard_reset(self, link: MicroPythonLink | None) -> None: ...

    def arm_power_cut(self, link: MicroPythonLink, operations: int) -> None: ...

    def arm_power_cut_at_boot(self, operations: int) -> None: ...

    def flash_operations(self, link: MicroPythonLink) -> int: ...

    def snapshot(self) -> object: ...

    def restore(self, snapshot: object) -> None: ...

    def interrupt(self) -> None: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


class SimHilTarget:
    """The simulated board in a fresh device folder."""

    capabilities = frozenset(
        {POWER_CUT, ARMED_POWER_CUT, HARD_RESET, FRESH_BOARD, LOOPBACK_NETWORK, FLASH_SNAPSHOT}
    )

    def __init__(self, board: Board, workdir: Path, identity: DeviceIdentity) -> None:
        self.name = board.name
        self.board = board
        self.sim = SimTarget(workdir, identity)
        # Flash operations after which the next boot loses power (None: no cut).
        self.cut_at_boot: int | None = None
        if not self.sim.created:
            self.sim.create()

    @property
    def port(self) -> str:
        return self.sim.port

    def power_on(self) -> None:
        self.sim.power_on(cut_after=self.cut_at_boot)
        self.cut_at_boot = None

    def power_cut(self) -> None:
        self.sim.power_cut()
        self.sim.serial.drain()

    def hard_reset(self, link: MicroPythonLink | None) -> None:
        if link is not None:
            link.close()
        self.sim.power_cut()
        self.sim.serial.drain()
        self.power_on()

    def arm_power_cut(self, link: MicroPythonLink, operations: int) -> None:
        arm_power_cut(link, operations)

    def arm_power_cut_at_boot(self, operations: int) -> None:
        self.cut_at_boot = int(operations)

    def flash_operations(self, link: MicroPythonLink) -> int:
        return int(link.eval("__import__('loader.hal.simflash').hal.simflash.supply.ops"))

    def snapshot(self) -> object:
        return self.sim.sim.snapshot()

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, dict)
        self.sim.sim.restore(snapshot)

    def interrupt(self) -> None:
        self.sim.serial.interrupt()

    def describe(self) -> str:
        return self.sim.serial.describe()

    def close(self) -> None:
        self.sim.close()


class BenchHilTarget:
    """A real board on a USB serial port, with an optional power switch."""

    def __init__(self, board: Board, port: str, power_hook: str | None = None) -> None:
        self.name = board.name
        self.board = board
        self._port = port
        self.power_hook = shlex.split(power_hook) if power_hook else None
        caps = {HARD_RESET}
        if self.power_hook:
            caps.add(POWER_CUT)
        self.capabilities = frozenset(caps)

    @property
    def port(self) -> str:
        return self._port

    def _hook(self, state: str) -> None:
        assert self.power_hook is not None
        proc = subprocess.run([*self.power_hook, state], capture_output=True, text=True,
                              check=False, timeout=30)
        if proc.returncode:
            raise LinkError(f"power hook {' '.join(self.power_hook)} {state} failed: "
                            f"{proc.stderr.strip() or proc.returncode}")

    def power_on(self) -> None:
        if self.power_hook:
            self._hook("on")
        wait_for_port(self._port, timeout_s=15)

    def power_cut(self) -> None:
        if not self.power_hook:
            raise LinkError("no power switch on this bench: give --hil-power-hook")
        self._hook("off")

    def hard_reset(self, link: MicroPythonLink | None) -> None:
        if self.power_hook:
            if link is not None:
                link.close()
            self._hook("off")
            time.sleep(0.5)
            self._hook("on")
        elif link is not None:
            # machine.reset() drops the USB port: the REPL never answers this exec.
            with contextlib.suppress(TransportError, serial.SerialException, OSError):
                link.transport.exec_raw_no_follow("import machine\nmachine.reset()\n")
            link.close()
        time.sleep(0.5)
        wait_for_port(self._port, timeout_s=15)

    def arm_power_cut(self, link: MicroPythonLink, operations: int) -> None:
        raise LinkError("a real board cannot cut its power after N flash operations")

    def arm_power_cut_at_boot(self, operations: int) -> None:
        raise LinkError("a real board cannot cut its power after N flash operations")

    def flash_operations(self, link: MicroPythonLink) -> int:
        raise LinkError("a real board does not count its flash operations")

    def snapshot(self) -> object:
        raise LinkError("a real board's flash cannot be saved from the host")

    def restore(self, snapshot: object) -> None:
        raise LinkError("a real board's flash cannot be put back from the host")

    def interrupt(self) -> None:
        return None  # Ctrl-C on the serial link, sent when the raw REPL is entered, does it

    def describe(self) -> str:
        return f"bench board on {self._port}"

    def close(self) -> None:
        return None
