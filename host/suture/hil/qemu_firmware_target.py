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
from dataclasses import dataclass
from pathlib import Path

from suture.boards.load import boards_dir
from suture.boards.schema import Board
from suture.firmware.build import build_firmware, dev_keys
from suture.hil.link import MicroPythonLink
from suture.hil.simport import SimSerialBoard
from suture.keys import PrivateKey, PublicKey, public_key_bytes
from suture.qemu.device import CUT_WORD, QemuDevice
from suture.sim import DeviceIdentity

# Boards whose MicroPython firmware builds and boots under stage0 in QEMU. The an505 (M33) runs
# stage0 in the secure state; MicroPython's ports/qemu has no non-secure set-up to run from its
# RAM, so that board keeps stage0's own HIL tests only.
FIRMWARE_BOARDS = frozenset({"qemu-mps2-an385", "qemu-mps2-an386"})
COUNT_ONLY = 0xFFFFFFFF  # a control block that counts flash operations and never cuts
REPO_ROOT = boards_dir().parent


class QemuFirmwareError(Exception):
    """The firmware or stage0 could not be built, or QEMU cannot run this board."""


@dataclass(frozen=True)
class QemuFirmware:
    """What a QEMU board needs to boot: stage0, the signed firmware and the keys it trusts."""

    stage0_elf: Path
    loader_image: Path
    loader_key: PublicKey
    vendor_key: PrivateKey


def prepare_firmware(board: Board, vendor_id: str, class_id: str) -> QemuFirmware:
    """Build stage0 and the board's firmware (incrementally, in ``build/firmware/BOARD``) with
    the build folder's development keys."""
    if board.name not in FIRMWARE_BOARDS or board.qemu is None:
        raise QemuFirmwareError(f"no MicroPython firmware runs on {board.name} in QEMU "
                                f"(boards with one: {', '.join(sorted(FIRMWARE_BOARDS))})")
    proc = subprocess.run(["make", "-C", str(REPO_ROOT / "stage0"), "-j2"],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise QemuFirmwareError(f"stage0 does not build:\n{proc.stderr[-2000:]}")
    out = REPO_ROOT / "build" / "firmware" / board.name
    vendor, loader = dev_keys(out / "keys")
    import uuid

    build = build_firmware(board, out, vendor_keys=[public_key_bytes(vendor.public_key())],
                           vendor_id=uuid.UUID(vendor_id), class_id=uuid.UUID(class_id),
                           loader_key=loader)
    stage0 = REPO_ROOT / "stage0" / "build" / board.qemu.build / "stage0.elf"
    return QemuFirmware(stage0, build.loader_image, loader.public_key(), vendor)


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

