"""The simulated board as a HIL target: a device folder (``suture.sim``) booted on a pty.

:class:`SimTarget` creates the device folder (flash images, ``board.json``), boots it with the
loader compiled to .mpy, and leaves the REPL on a pseudo-terminal path (:attr:`SimTarget.port`)
that the HIL plugin and `suture board …` open like a USB serial port. A hard reset and a power
cut end the process; a power cut can also be armed to strike after a number of flash
operations, in the middle of what the board is doing.
"""

from __future__ import annotations

import os
from pathlib import Path

from suture.boards.load import boards_dir
from suture.devicectl import board_code, device_ops
from suture.devicectl.repl import MicroPythonLink
from suture.devicectl.simport import SimSerialBoard
from suture.sim import DeviceIdentity, SimBoard
from suture.sim import load_board as load_sim_geometry
from suture.sim.device import _tool, build_loader

BOOT_FILE = "hil_boot.py"  # the boot script (board_side/sim_boot.py) in the device folder


class SimTarget:
    """One simulated board: its device folder and its process on a pty."""

    def __init__(
        self, workdir: Path, identity: DeviceIdentity, *, board_file: Path | None = None
    ) -> None:
        geometry = load_sim_geometry(board_file or boards_dir() / "sim" / "board.toml")
        self.sim = SimBoard(workdir, geometry, identity)
        self.workdir = workdir
        self._serial: SimSerialBoard | None = None

    @property
    def created(self) -> bool:
        """Whether the device folder holds flash images already."""
        return self.sim.external_image.exists() and (self.workdir / "board.json").exists()

    def create(self) -> None:
        """Blank flash images and the board's configuration (a board fresh from the factory)."""
        self.sim.create()
        self.install_boot_script()

    def install_boot_script(self) -> None:
        """Write the boot script into the device folder (idempotent)."""
        (self.workdir / BOOT_FILE).write_text(board_code.source(board_code.SIM_BOOT))

    def _argv(self) -> list[str]:
        return [
            str(_tool("micropython")),
            "-X",
            f"heapsize={self.sim.heapsize}",
            "-i",
            BOOT_FILE,
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MICROPYPATH"] = str(build_loader())
        env.pop("SUTURE_CUT_AFTER", None)
        env.pop("SUTURE_CUT_TORN", None)
        return env

    @property
    def serial(self) -> SimSerialBoard:
        """The pty the board's REPL is on (created at the first power-on)."""
        if self._serial is None:
            self.install_boot_script()
            self._serial = SimSerialBoard(self._argv(), self.workdir, self._env())
        return self._serial

    @property
    def port(self) -> str:
        """The serial port path of the board's REPL (``/dev/pts/N``)."""
        return self.serial.port

    def power_on(self, *, cut_after: int | None = None) -> None:
        """Boot the board; with ``cut_after`` the supply fails after that many flash
        operations of this boot (a cut in the middle of what the boot does: install, revert)."""
        env = self._env()
        if cut_after is not None:
            env["SUTURE_CUT_AFTER"] = str(int(cut_after))
        self.serial.env = env
        self.serial.power_on()

    def power_cut(self) -> None:
        """Cut the power now."""
        if self._serial is not None:
            self._serial.power_cut()

    def hard_reset(self) -> None:
        """Cut the power and boot again on the same port."""
        self.serial.hard_reset()

    def close(self) -> None:
        """Power off and release the pty."""
        if self._serial is not None:
            self._serial.close()
            self._serial = None


def arm_power_cut(link: MicroPythonLink, operations: int) -> None:
    """Make the simulated board's supply fail after ``operations`` more flash operations."""
    device_ops.run(link, [board_code.SIM_POWER],
                   board_code.call("arm_power_cut", board_code.literal(int(operations))))
