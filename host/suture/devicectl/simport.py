"""The simulated board's serial port: the MicroPython unix port on a pseudo-terminal.

The process's stdin/stdout/stderr are the pty's controlling side; the other side has a path
(``/dev/pts/N``) that any serial tool opens like a USB port: mpremote, pytest-embedded's serial
service, ``suture board …``. A reset or a power cut is the end of the process (killed, so
nothing is flushed), and the next boot is a new process on the same port path.
"""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import termios
import time
import tty
from collections.abc import Sequence
from pathlib import Path

from suture.devicectl.errors import DeviceCtlError


class SimPortError(DeviceCtlError):
    """The simulated board's process could not be started or stopped."""


class SimSerialBoard:
    """One simulated board process behind a pty path, restartable on the same path.

    ``argv`` is the command line that boots the board (the unix-port ``micropython`` with its
    heap size and a boot script that ends in the REPL); ``cwd`` the device folder.
    """

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = env
        self._master, self._slave = pty.openpty()
        # Raw mode on both sides: no echo, no CR/LF translation, just bytes, as on a USB CDC port.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        self.port = os.ttyname(self._slave)
        self._proc: subprocess.Popen[bytes] | None = None
        self.boots = 0

    @property
    def running(self) -> bool:
        """Whether the board's process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self._proc.pid if self.running and self._proc is not None else None

    def power_on(self) -> None:
        """Start the board's process (a cold boot)."""
        if self.running:
            return
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=self._master,
                stdout=self._master,
                stderr=self._master,
                cwd=self.cwd,
                env=self.env,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise SimPortError(f"cannot start the simulated board ({self.argv[0]}): {exc}") from exc
        self.boots += 1

    def interrupt(self) -> None:
        """Ctrl-C for the running program (KeyboardInterrupt): the unix port takes it as
        SIGINT, not as a byte on its input."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGINT)

    def power_cut(self) -> None:
        """Cut the power: kill the process at once, nothing is flushed or finished."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self._proc = None

    def hard_reset(self) -> None:
        """Power cycle: cut the power, drop stale output, boot again on the same port."""
        self.power_cut()
        self.drain()
        self.power_on()

    def wait_exit(self, timeout_s: float) -> int | None:
        """Wait for the process to end by itself (a reset it asked for); its exit code."""
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def drain(self) -> None:
        """Discard what nobody read, both ways (the previous boot's output, and input the
        previous process never took), so the next boot starts clean."""
        termios.tcflush(self._slave, termios.TCIOFLUSH)
        termios.tcflush(self._master, termios.TCIOFLUSH)

    def describe(self) -> str:
        """The process's state, for error messages."""
        if self._proc is None:
            return "the simulated board is powered off"
        code = self._proc.poll()
        return "its process is running" if code is None else f"its process exited ({code})"

    def close(self) -> None:
        """Power off and release the pty."""
        self.power_cut()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SimSerialBoard:
        self.power_on()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_port(path: str, timeout_s: float = 5.0) -> None:
    """Wait until ``path`` exists (a board enumerating after a reset)."""
    end = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SimPortError(f"{path} did not appear within {timeout_s:.0f} s")
        time.sleep(0.05)
