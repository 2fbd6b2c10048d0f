"""The QEMU boards as a HIL target for stage0 (``--target qemu-mps2-an385`` ...).

The mps2 machines have no flash chips; stage0's QEMU port plays both flash devices in RAM,
which QEMU preloads (``-device loader``) and the monitor's ``memsave`` writes back. A boot
here is: build the flash contents from the board definition (provisioning record, signed
loader image, journal), run stage0 until it has handed over or refused, read its UART and both
flash devices. No MicroPython runs on these targets; stage0's stand-in loader reports what it
was given and halts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from suture.boards.load import boards_dir
from suture.boards.schema import Board
from suture.devicectl.errors import DeviceCtlError
from suture.image import HEADER_SIZE, provision_record, sign_image
from suture.keys import PrivateKey
from suture.qemu import processes

# stage0 and its stand-in loader print one of these last.
END_MARKERS = ("loader: halted", "RECOVERY:", "POWER CUT", "stage0: fault")
STAGE0_DIR = boards_dir().parent / "stage0"


class QemuTargetError(DeviceCtlError):
    """QEMU or the stage0 build is missing, or the board cannot boot in QEMU."""


@dataclass(frozen=True)
class QemuRun:
    """One boot: the UART text and both flash devices afterwards."""

    uart: str
    internal: bytes
    external: bytes


def _region(board: Board, name: str) -> tuple[int, int]:
    region = board.internal_flash.region(name)
    if region is None:
        raise QemuTargetError(f"board {board.name} has no internal region {name!r}")
    return region.offset, region.size


class QemuStage0Target:
    """stage0 of one QEMU board, booted on flash contents the test chooses."""

    capabilities = frozenset({"stage0"})

    def __init__(self, board: Board, workdir: Path) -> None:
        if board.qemu is None:
            raise QemuTargetError(f"board {board.name} is not a QEMU board (no [qemu] section)")
        if shutil.which("qemu-system-arm") is None:
            raise QemuTargetError("qemu-system-arm is not installed (apt-get install "
                                  "qemu-system-arm)")
        self.name = board.name
        self.board = board
        self.qemu = board.qemu
        self.workdir = workdir
        self.build = STAGE0_DIR / "build" / board.qemu.build

    def ensure_built(self) -> None:
        """Build stage0 for the QEMU boards (make -C stage0) when its ELF is missing."""
        if (self.build / "stage0.elf").exists():
            return
        proc = subprocess.run(["make", "-C", str(STAGE0_DIR), "-j2"], capture_output=True,
                              text=True, check=False)
        if proc.returncode or not (self.build / "stage0.elf").exists():
            raise QemuTargetError(f"stage0 build failed: {proc.stderr.strip()[-500:]}")

    def loader_body(self) -> bytes:
        """stage0's stand-in loader for this board (prints its version, then halts)."""
        self.ensure_built()
        return (self.build / "test-loader.bin").read_bytes()

    def signed_loader(self, key: PrivateKey, *, counter: int, body: bytes | None = None) -> bytes:
        """A loader image signed with ``key``, linked for the board's loader region."""
        offset, _ = _region(self.board, "loader")
        load = self.board.internal_flash.base + offset + HEADER_SIZE
        return sign_image(body if body is not None else self.loader_body(), private_key=key,
                          version=(1, counter, 0), security_counter=counter, load_address=load)

    def provisioned_flash(self, key: PrivateKey, loader: bytes | None) -> tuple[bytes, bytes]:
        """Internal flash holding the provisioning record for ``key`` and ``loader``; a blank
        external flash."""
        internal = bytearray(b"\xff" * self.board.internal_flash.size)
        prov, _ = _region(self.board, "provisioning")
        record = provision_record(key.public_key())
        internal[prov : prov + len(record)] = record
        if loader is not None:
            offset, size = _region(self.board, "loader")
            if len(loader) > size:
                raise QemuTargetError(f"loader image of {len(loader)} bytes > region {size}")
            internal[offset : offset + len(loader)] = loader
        return bytes(internal), b"\xff" * self.board.external_flash.size

    def boot(self, internal: bytes, external: bytes, *, timeout_s: float = 30.0) -> QemuRun:
        """Boot stage0 on these flash contents; what it printed and left in flash."""
        self.ensure_built()
        prov, _ = _region(self.board, "provisioning")
        base, ext_base = self.board.internal_flash.base, self.qemu.external_base
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        int_in, ext_in = work / "int-in.bin", work / "ext-in.bin"
        int_out, ext_out, uart = work / "int-out.bin", work / "ext-out.bin", work / "uart.txt"
        for path in (int_out, ext_out, uart):
            path.unlink(missing_ok=True)
        int_in.write_bytes(internal[prov:])  # stage0 itself is the kernel
        ext_in.write_bytes(external)
        argv = [
            "qemu-system-arm", "-M", self.qemu.machine, "-display", "none", "-monitor", "stdio",
            "-serial", f"file:{uart}", "-kernel", str(self.build / "stage0.elf"),
            "-device", f"loader,file={int_in},addr={base + prov:#x}",
            "-device", f"loader,file={ext_in},addr={ext_base:#x}",
        ]
        proc = processes.start(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + timeout_s
            text = ""
            while not any(m in text for m in END_MARKERS):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise QemuTargetError(f"{self.name}: stage0 did not finish within "
                                          f"{timeout_s:.0f} s; UART: {text[-300:]!r}")
                time.sleep(0.05)
                text = uart.read_text(errors="replace") if uart.exists() else ""
            size = len(internal) - prov
            monitor = (f'memsave {base + prov:#x} {size} "{int_out}"\n'
                       f'memsave {ext_base:#x} {len(external)} "{ext_out}"\nquit\n')
            proc.communicate(monitor.encode(), timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return QemuRun(uart.read_text(errors="replace"),
                       internal[:prov] + int_out.read_bytes(), ext_out.read_bytes())

    def close(self) -> None:
        return None
