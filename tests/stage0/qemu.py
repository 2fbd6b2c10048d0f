"""Boot stage0 in qemu-system-arm with its flash preloaded; read the UART; dump the flash.

Both flash devices are RAM regions of the mps2 machines (docs/stage0.md, "QEMU"): QEMU loads
them with ``-device loader``, and once stage0 (or the loader it started) has printed its last
line, the monitor's ``memsave`` writes them back to files.
"""

from __future__ import annotations

import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from suture.qemu import processes

from . import flashimg as fi


@dataclass(frozen=True)
class Machine:
    name: str
    internal_base: int
    external_base: int
    cut_word: int

    @property
    def load_address(self) -> int:
        return self.internal_base + fi.LOADER_OFF + fi.HEADER_SIZE


MACHINES = {
    "an385": Machine("mps2-an385", 0x21000000, 0x21200000, 0x20100000),
    "an386": Machine("mps2-an386", 0x21000000, 0x21200000, 0x20100000),
    "an505": Machine("mps2-an505", 0x10000000, 0x38200000, 0x38100000),
}
END_MARKERS = ("loader: halted", "RECOVERY:", "POWER CUT", "stage0: fault")


@dataclass
class Run:
    uart: str
    internal: bytes
    external: bytes


def boot(build: Path, target: str, internal: bytes, external: bytes, work: Path, *,
         cut: tuple[int, bool] | None = None, timeout: float = 30.0,
         count_instructions: bool = False) -> Run:
    """Boot once. ``count_instructions`` runs QEMU with ``-icount shift=0`` (one instruction per
    virtual nanosecond), so the stand-in loader's FPGA counter reading x 40 is the number of
    instructions executed before it (25 MHz counter)."""
    m = MACHINES[target]
    work.mkdir(parents=True, exist_ok=True)
    int_in, ext_in = work / "int-in.bin", work / "ext-in.bin"
    int_out, ext_out, uart = work / "int-out.bin", work / "ext-out.bin", work / "uart.txt"
    for p in (int_out, ext_out, uart):
        p.unlink(missing_ok=True)
    int_in.write_bytes(internal[fi.PROVISION_OFF :])
    ext_in.write_bytes(external)
    args = [
        "qemu-system-arm", "-M", m.name, "-display", "none", "-monitor", "stdio",
        "-serial", f"file:{uart}", "-kernel", str(build / target / "stage0.elf"),
        "-device", f"loader,file={int_in},addr={m.internal_base + fi.PROVISION_OFF:#x}",
        "-device", f"loader,file={ext_in},addr={m.external_base:#x}",
    ]
    if count_instructions:
        args += ["-icount", "shift=0,sleep=off"]
    if cut is not None:
        cut_file = work / "cut.bin"
        cut_file.write_bytes(struct.pack("<IIII", 0x54554353, cut[0], int(cut[1]), 0))
        args += ["-device", f"loader,file={cut_file},addr={m.cut_word:#x}"]
    proc = processes.start(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    assert proc.stdin is not None
    text = ""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = uart.read_text(errors="replace") if uart.exists() else ""
            if any(marker in text for marker in END_MARKERS):
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"{target}: no end marker within {timeout}s; UART:\n{text}")
        int_len = fi.INTERNAL_SIZE - fi.PROVISION_OFF
        cmds = (f"memsave {m.internal_base + fi.PROVISION_OFF:#x} {int_len} \"{int_out}\"\n"
                f"memsave {m.external_base:#x} {fi.EXTERNAL_SIZE} \"{ext_out}\"\nquit\n")
        proc.communicate(cmds.encode(), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = uart.read_text(errors="replace")
    new_internal = bytes(internal[: fi.PROVISION_OFF]) + int_out.read_bytes()
    return Run(text, new_internal, ext_out.read_bytes())
