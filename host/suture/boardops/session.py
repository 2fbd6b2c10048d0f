"""An open connection to one board for `suture board …`: a real board on a serial port, or a
simulated board in a device folder (booted on a pty for the duration of the command).

Either way the caller gets a :class:`BoardSession` whose ``link`` is the board's raw REPL
and whose :meth:`BoardSession.reset` reboots the board and reconnects. Opening fails with
one clear error when the board is absent, busy, or of another kind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from suture.boards.schema import Board
from suture.devicectl import device_ops
from suture.devicectl.repl import (
    BoardAbsentError,
    BoardBusyError,
    LinkError,
    MicroPythonLink,
    open_transport,
)
from suture.devicectl.sim_target import SimTarget
from suture.devicectl.simport import wait_for_port
from suture.sim import DeviceIdentity

LOCK_FILE = ".lock"


def read_sim_identity(device_dir: Path) -> DeviceIdentity:
    """The identity a simulated board's folder was created with (its ``board.json``)."""
    try:
        config = json.loads((device_dir / "board.json").read_text())
        return DeviceIdentity(
            vendor_id=bytes.fromhex(config["vendor_id"]),
            class_id=bytes.fromhex(config["class_id"]),
            keys=tuple(bytes.fromhex(k) for k in config["keys"]),
            device_id=bytes.fromhex(config.get("device_id", "")),
            max_trial_boots=int(config.get("max_trial_boots", 3)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BoardAbsentError(
            f"no simulated board in {device_dir}: {exc} "
            f"(create one with `suture board provision sim --device {device_dir} …`)"
        ) from None


class BoardSession:
    """One board, booted and connected."""

    def __init__(
        self,
        board: Board,
        *,
        port: str | None = None,
        sim: SimTarget | None = None,
        boot_timeout_s: float = 30.0,
    ) -> None:
        self.board = board
        self.port = port
        self.sim = sim
        self.boot_timeout_s = boot_timeout_s
        self.link: MicroPythonLink | None = None
        self.boot_line = ""

    @property
    def repl(self) -> MicroPythonLink:
        """The open raw-REPL link."""
        if self.link is None:
            raise LinkError("the board is not connected")
        return self.link

    @property
    def boot_state(self) -> str:
        """The journal state of the last boot (from its ``SUTURE-BOOT`` line)."""
        parts = self.boot_line.split()
        return parts[1] if len(parts) > 1 else ""

    def _boot_sim(self) -> None:
        """Power the simulated board on once its port is open (so no boot output is lost)."""
        assert self.sim is not None
        self.link, self.boot_line = MicroPythonLink.after_boot(
            self.sim.port,
            self.board,
            timeout_s=self.boot_timeout_s,
            interrupt=self.sim.serial.interrupt,
            power_on=self.sim.power_on,
        )

    def open(self) -> None:
        """Boot the simulated board, or connect to the real one (checking its kind)."""
        if self.sim is not None:
            self._boot_sim()
        else:
            assert self.port is not None
            self.link = MicroPythonLink.connect(self.port, self.board)

    def reset(self) -> str:
        """Reboot the board and reconnect; the boot state (the loader acts on the journal)."""
        if self.sim is not None:
            if self.link is not None:
                self.link.close()
                self.link = None
            self.sim.power_cut()
            self.sim.serial.drain()
            self._boot_sim()
            return self.boot_state
        assert self.port is not None
        link = self.repl
        with contextlib.suppress(LinkError, OSError):
            link.transport.exec_raw_no_follow("import machine\nmachine.reset()\n")
        link.close()
        self.link = None
        time.sleep(0.5)
        wait_for_port(self.port, timeout_s=self.boot_timeout_s)
        try:
            self.link, self.boot_line = MicroPythonLink.after_boot(
                self.port, self.board, timeout_s=self.boot_timeout_s
            )
        except LinkError:
            # A USB-native board prints its boot line before its port is open again: read the
            # state it booted into through the REPL instead.
            self.link = MicroPythonLink.connect(self.port, self.board)
            self.boot_line = f"SUTURE-BOOT {device_ops.status(self.link).get('state', '')}"
        return self.boot_state

    @property
    def app_log(self) -> str:
        """What the board printed after its boot line until the REPL: the application's log."""
        return self.repl.boot_log

    def close(self) -> None:
        """Release the port; a simulated board is powered off."""
        if self.link is not None:
            self.link.close()
            self.link = None
        if self.sim is not None:
            self.sim.close()


@contextlib.contextmanager
def _device_lock(device_dir: Path) -> Iterator[IO[str]]:
    device_dir.mkdir(parents=True, exist_ok=True)
    handle = (device_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise BoardBusyError(
            f"the simulated board in {device_dir} is busy: another command is running it"
        ) from None
    try:
        yield handle
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def open_board(
    board: Board,
    *,
    port: str | None = None,
    device_dir: Path | None = None,
    new_identity: DeviceIdentity | None = None,
) -> Iterator[BoardSession]:
    """Boot and connect to ``board``: ``device_dir`` for the simulator, ``port`` otherwise.

    With ``new_identity`` a simulated board that does not exist yet is created (blank flash,
    trusting the identity's keys): the factory state provisioning starts from.
    """
    if board.flashing.method == "sim":
        if device_dir is None:
            raise LinkError(f"board {board.name} is simulated: give --device DIR")
        with _device_lock(device_dir):
            existing = (device_dir / "board.json").exists()
            if not existing and new_identity is None:
                raise BoardAbsentError(
                    f"no simulated board in {device_dir} (create one with "
                    f"`suture board provision sim --device {device_dir} …`)"
                )
            identity = new_identity if not existing and new_identity else read_sim_identity(
                device_dir
            )
            sim = SimTarget(device_dir, identity)
            if not existing:
                sim.create()
            session = BoardSession(board, sim=sim)
            try:
                session.open()
                yield session
            finally:
                session.close()
        return
    if port is None:
        raise LinkError(f"board {board.name}: give --port (e.g. /dev/ttyACM0)")
    session = BoardSession(board, port=port)
    try:
        session.open()
        yield session
    finally:
        session.close()


def probe_port(port: str) -> None:
    """Fail with the absent/busy error for ``port`` without talking to the board."""
    if not os.path.exists(port):
        raise BoardAbsentError(f"no board at {port}: the port does not exist (is it plugged in?)")
    open_transport(port).close()
