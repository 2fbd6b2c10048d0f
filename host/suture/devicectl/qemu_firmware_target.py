"""A QEMU board running the real firmware as a HIL target (``--target qemu-mps2-an385``).

The same MicroPython scenarios as on the simulator run here against stage0 and the signed
MicroPython firmware with the frozen loader (``make firmware``): UART0 is on a pseudo-terminal
path that the HIL plugin opens like a USB port, the flash is QEMU's file-backed RAM
(:class:`suture.qemu.QemuDevice`), a reset or a power cut ends the QEMU process, and a power cut
can be armed to strike after N flash operations through stage0's control block, which stage0
and the loader's QEMU HAL count together. Each test starts from the factory's flash: stage0's
provisioning record and the signed firmware, with a blank filesystem.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path

from suture.boards.schema import Board
from suture.devicectl.repl import MicroPythonLink
from suture.devicectl.simport import SimSerialBoard
from suture.firmware.qemu_build import QemuFirmware
from suture.qemu.device import CUT_WORD, QemuDevice
from suture.sim import DeviceIdentity

COUNT_ONLY = 0xFFFFFFFF  # a control block that counts flash operations and never cuts


class _QemuSerial(SimSerialBoard):
    """QEMU on the pty: Ctrl-C is a byte on the UART (not a signal), and a reset the firmware
    asks for (QEMU exits by itself with -no-reboot) powers the board on again, as the reset
    line of a real board would."""

    def __init__(self, device: QemuDevice, cwd: Path) -> None:
        super().__init__(["true"], cwd)
        self.device = device
        self.cut: tuple[int, bool] = (COUNT_ONLY, False)
        self._lock = threading.Lock()
        self._generation = 0

    def power_on(self) -> None:
        with self._lock:
            self.argv = self.device.command(self.cut, console="stdio")
            if self.running:
                return
            super().power_on()
            self._generation += 1
            gen, proc = self._generation, self._proc
        threading.Thread(target=self._restart_after_reset, args=(gen, proc), daemon=True).start()

    def _restart_after_reset(self, gen: int, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.wait() != 0:
            return
        with self._lock:
            if gen != self._generation or self._proc is not proc:
                return  # powered off (or on again) by the host meanwhile
            self._proc = None
            self.cut = (COUNT_ONLY, False)
        self.power_on()

    def power_cut(self) -> None:
        with self._lock:
            self._generation += 1
            super().power_cut()

    def interrupt(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._master, b"\x03")


class QemuFirmwareHilTarget:
    """One QEMU board with the real firmware, fresh from the factory."""

    capabilities = frozenset(
        {"power_cut", "armed_power_cut", "hard_reset", "fresh_board", "flash_snapshot"}
    )

    def __init__(self, board: Board, workdir: Path, firmware: QemuFirmware,
                 identity: DeviceIdentity) -> None:
        self.name = board.name
        self.board = board
        self.identity = identity
        self.device = QemuDevice(board, firmware.stage0_elf, workdir)
        self.device.factory_flash(firmware.loader_image.read_bytes(), firmware.loader_key)
        self.cut_at_boot: int | None = None
        self.serial = _QemuSerial(self.device, workdir)

    @property
    def port(self) -> str:
        return self.serial.port

    def power_on(self) -> None:
        at = COUNT_ONLY if self.cut_at_boot is None else self.cut_at_boot + 1
        self.serial.cut = (at, False)
        self.cut_at_boot = None
        self.serial.power_on()

    def power_cut(self) -> None:
        self.serial.power_cut()
        self.serial.drain()

    def hard_reset(self, link: MicroPythonLink | None) -> None:
        if link is not None:
            link.close()
        self.power_cut()
        self.power_on()

    # As on the simulator, ``operations`` more operations complete and the next one is cut;
    # stage0's control block names the operation that is cut (counted from 1).
    def arm_power_cut(self, link: MicroPythonLink, operations: int) -> None:
        link.exec(f"import machine\nmachine.mem32[{CUT_WORD + 4:#x}] = "
                  f"machine.mem32[{CUT_WORD + 12:#x}] + {int(operations) + 1}\n"
                  "print('SUTURE-JSON {}')")

    def arm_power_cut_at_boot(self, operations: int) -> None:
        self.cut_at_boot = int(operations)

    def flash_operations(self, link: MicroPythonLink) -> int:
        return int(link.eval(f"__import__('machine').mem32[{CUT_WORD + 12:#x}]"))

    def snapshot(self) -> bytes:
        return self.device.read_flash()

    def restore(self, snapshot: object) -> None:
        assert isinstance(snapshot, bytes)
        self.device.write_flash(snapshot)

    def interrupt(self) -> None:
        self.serial.interrupt()

    def describe(self) -> str:
        state = self.serial.describe().replace("the simulated board", "the QEMU board")
        return f"{self.name} in QEMU ({state.replace('its process', 'QEMU')})"

    def close(self) -> None:
        self.serial.close()

