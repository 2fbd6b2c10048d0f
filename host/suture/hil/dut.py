"""The MicroPython device under test that HIL tests drive (the ``mpy_dut`` fixture)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import serial
from mpremote.transport_serial import SerialTransport

from suture.boards.schema import Board
from suture.devicectl import device_ops
from suture.devicectl.repl import LinkError, MicroPythonLink, Progress, is_pty, open_transport
from suture.devicectl.status_protocol import StatusWatcher
from suture.devicectl.targets import HilTarget


def transport_from_serial(port: serial.SerialBase) -> SerialTransport:
    """mpremote's transport over a port someone else opened (pytest-embedded's serial
    service): the bytes go through that pyserial object."""
    transport: SerialTransport = SerialTransport.__new__(SerialTransport)
    transport.in_raw_repl = False
    transport.use_raw_paste = not is_pty(str(port.port))
    transport.device_name = str(port.port)
    transport.mounted = False
    transport.serial = port
    transport.is_pty = False
    if port.timeout is None:
        port.timeout = 0.5
    return transport


class MicroPythonDut:
    """A booted board with its REPL: exec/eval, files, resets, boot wait, status, power cuts."""

    def __init__(
        self,
        target: HilTarget,
        *,
        boot_timeout_s: float = 30.0,
        app_log_timeout_s: float = 5.0,
        serial_port: serial.SerialBase | None = None,
    ) -> None:
        self.target = target
        # The port pytest-embedded's serial service opened, when the DUT goes through it.
        self.serial_port = serial_port
        self.boot_timeout_s = boot_timeout_s
        # How long the application may run after the boot line before it is interrupted.
        self.app_log_timeout_s = app_log_timeout_s
        self._link: MicroPythonLink | None = None
        self._watching: MicroPythonLink | None = None
        self.boot_line = ""
        self.boots = 0

    @property
    def board(self) -> Board:
        """The board definition of the target."""
        return self.target.board

    @property
    def repl(self) -> MicroPythonLink:
        """The open REPL link (the name `suture.boardops.provision` expects)."""
        return self.link

    @property
    def link(self) -> MicroPythonLink:
        """The open REPL link (after :meth:`wait_for_boot`)."""
        if self._link is None:
            raise LinkError("the board is not connected: call wait_for_boot() after a reset")
        return self._link

    def start(self) -> str:
        """Power the board on and wait for its boot (a fresh simulated board), or connect to
        the running bench board; the boot state ("" when it booted before the test)."""
        if "fresh_board" in self.target.capabilities:
            return self.wait_for_boot(power_on=self.target.power_on)
        self.target.power_on()
        transport = transport_from_serial(self.serial_port) if self.serial_port else None
        self._link = MicroPythonLink.connect(self.target.port, self.board, transport=transport)
        return self.boot_state

    def wait_for_boot(
        self,
        *,
        log_until: bytes | None = None,
        power_on: Callable[[], None] | None = None,
    ) -> str:
        """Wait for the boot line ``SUTURE-BOOT <state>``, keep the application's log (until
        its REPL prompt, ``log_until``, or :attr:`app_log_timeout_s`) and enter the REPL; the
        boot's journal state."""
        if self._link is not None:
            self._link.close()
            self._link = None
        if self.serial_port is not None:
            raise LinkError("a port borrowed from pytest-embedded's serial service does not "
                            "survive a reset of a USB-native board: run without the service")
        try:
            self._link, self.boot_line = MicroPythonLink.after_boot(
                self.target.port,
                self.board,
                timeout_s=self.boot_timeout_s,
                log_timeout_s=self.app_log_timeout_s,
                interrupt=self.target.interrupt,
                log_until=log_until,
                power_on=power_on,
            )
        except LinkError as exc:
            raise LinkError(f"{exc} ({self.target.describe()})") from None
        self.boots += 1
        return self.boot_state

    @property
    def boot_state(self) -> str:
        """The journal state the last boot reported (``CONFIRMED``, ``TRIAL``, ``BLANK`` ...)."""
        parts = self.boot_line.split()
        return parts[1] if len(parts) > 1 else ""

    def reset_and_watch(self, *, log_until: bytes, timeout_s: float = 60.0) -> StatusWatcher:
        """Reset and let the application run without taking the REPL: wait for the boot line
        and for ``log_until`` in its log, then return a status-protocol watcher on the port
        while the application (the agent) keeps running. :meth:`take_repl` ends the watch."""
        link, self._link = self._link, None
        fresh = "fresh_board" in self.target.capabilities
        if fresh:
            if link is not None:
                link.close()
            self.target.power_cut()
        else:
            self.target.hard_reset(link)
        transport = (transport_from_serial(self.serial_port) if self.serial_port
                     else open_transport(self.target.port))
        watching = MicroPythonLink(transport, self.target.port,
                                   borrowed=self.serial_port is not None)
        try:
            if fresh:
                self.target.power_on()  # once the port is open: its boot line is not lost
            watching.read_until(b"SUTURE-BOOT ", timeout_s)
            line = watching.read_until(b"\n", timeout_s)
            self.boot_line = ("SUTURE-BOOT " + line.decode(errors="replace")).strip()
            watching.boot_log = watching.read_until(log_until, timeout_s).decode(
                errors="replace")
        except LinkError as exc:
            watching.close()
            raise LinkError(f"{exc} ({self.target.describe()})") from None
        self.boots += 1
        self._watching = watching
        return StatusWatcher(transport.serial)

    def take_repl(self) -> None:
        """End a watch: interrupt the application and enter the raw REPL."""
        watching, self._watching = self._watching, None
        if watching is None:
            raise LinkError("not watching: call reset_and_watch() first")
        self.target.interrupt()
        watching._enter(self.boot_timeout_s)
        self._link = watching

    def exec(self, code: str, timeout_s: float = 10.0) -> str:
        """Run code on the board; what it printed."""
        return self.link.exec(code, timeout_s=timeout_s)

    def eval(self, expression: str) -> Any:
        """The value of an expression on the board."""
        return self.link.eval(expression)

    def put(self, data: bytes, remote: str, progress: Progress | None = None) -> None:
        """Write a file on the board."""
        self.link.put(data, remote, progress)

    def get(self, remote: str) -> bytes:
        """Read a file from the board."""
        return self.link.get(remote)

    def soft_reset(self) -> str:
        """Restart MicroPython, keeping power and flash; the boot state after.

        A real board does it in place (Ctrl-D); the simulated board restarts its process, which
        is the same for the code on it: the heap is gone, the flash is kept.
        """
        if "fresh_board" in self.target.capabilities:
            return self.hard_reset()
        self.link.soft_reset()
        return self.boot_state

    def hard_reset(self, *, log_until: bytes | None = None) -> str:
        """Reset the board (power cycle where possible) and wait for it to boot again."""
        link, self._link = self._link, None
        if "fresh_board" in self.target.capabilities:
            # The simulated board: cut, then start it once the port is open again.
            if link is not None:
                link.close()
            self.target.power_cut()
            return self.wait_for_boot(log_until=log_until, power_on=self.target.power_on)
        self.target.hard_reset(link)
        try:
            return self.wait_for_boot(log_until=log_until)
        except LinkError:
            # A USB-native board prints its boot line before the host can reopen its port;
            # the state it booted into is then read through the REPL instead.
            self._link = MicroPythonLink.connect(self.target.port, self.board)
            state = str(device_ops.status(self._link).get("state", ""))
            self.boot_line = f"SUTURE-BOOT {state}"
            self.boots += 1
            return state

    def power_cut(self) -> None:
        """Cut the power now; :meth:`power_on` boots again."""
        if self._link is not None:
            self._link.close()
            self._link = None
        self.target.power_cut()

    def power_on(self) -> str:
        """Power on after a cut and wait for the boot."""
        return self.wait_for_boot(power_on=self.target.power_on)

    def arm_power_cut(self, operations: int) -> None:
        """Make the supply fail after ``operations`` more flash operations (simulator)."""
        self.target.arm_power_cut(self.link, operations)

    def arm_power_cut_at_boot(self, operations: int) -> None:
        """Make the next boot lose power after ``operations`` flash operations (simulator):
        a cut in the middle of what the loader does at boot (install, revert)."""
        self.target.arm_power_cut_at_boot(operations)

    def flash_operations(self) -> int:
        """Flash erase/program operations since this boot began (simulator, QEMU)."""
        return self.target.flash_operations(self.link)

    def status(self) -> dict[str, Any]:
        """The status protocol's answer (docs/hil.md): journal state, versions, journal."""
        return device_ops.status(self.link)

    def close(self) -> None:
        """Release the link and power the target off."""
        if self._watching is not None:
            self._watching.close()
            self._watching = None
        if self._link is not None:
            self._link.close()
            self._link = None
        self.target.close()
