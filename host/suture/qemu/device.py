"""One QEMU device: a flash file (the 16 MiB RAM at 0x21000000 that holds both flash devices,
backed by ``memory-backend-file``, so every write the device makes is in the file at once, as on
flash), stage0 as the boot ROM, and UART0 (the console and REPL) on the process's pipes.

A power-on runs until the device stops the machine (a reset or an injected power cut: the
firmware ends QEMU through semihosting) or until its application returned and the REPL waits;
:meth:`QemuDevice.exec` then runs code there through the raw REPL. A power cut is injected with
stage0's control block (docs/stage0.md, "QEMU"): operation N of the power-on, clean or half done,
counted by stage0 and the loader alike.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suture.boards.schema import Board
from suture.errors import SutureError
from suture.image import provision_record
from suture.keys import PublicKey
from suture.qemu import processes

RAM_SIZE = 16 << 20  # QEMU's mps.ram on the mps2 boards
CUT_WORD = 0x20100000
CUT_MAGIC = 0x54554353
PROMPT = b"\r\n>>> "
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
STAGE0_CUT = b"stage0: POWER CUT (injected)\r\n"


class QemuError(SutureError):
    """QEMU could not run the device, or the device did not answer as expected."""


@dataclass
class Boot:
    """What one power-on printed and how it ended."""

    console: str = ""
    stopped: bool = False  # the machine stopped (reset or power cut), QEMU exited
    exit_code: int | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def power_cut(self) -> bool:
        return "POWER CUT" in self.console

    def line(self, prefix: str) -> str | None:
        """The last console line starting with ``prefix``."""
        for text in reversed(self.console.splitlines()):
            if text.startswith(prefix):
                return text
        return None


class QemuDevice:
    """A QEMU mps2 board with its flash in ``folder/flash.bin``."""

    def __init__(self, board: Board, stage0_elf: Path, folder: Path, *,
                 icount: bool = False, link_port: int | None = None) -> None:
        if board.qemu is None:
            raise QemuError(f"board {board.name} is not a QEMU board")
        self.board = board
        self.stage0_elf = stage0_elf
        self.folder = folder
        self.flash = folder / "flash.bin"
        self.icount = icount
        self.link_port = link_port  # UART1 -> the device-link gateway on 127.0.0.1:port
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self.boots = 0
        self.last_stop: Boot | None = None
        self.exit_code: int | None = None

    # ---- flash -------------------------------------------------------------------------
    def _int_region(self, name: str) -> tuple[int, int]:
        for r in self.board.internal_flash.regions:
            if r.name == name:
                return r.offset, r.size
        raise QemuError(f"board {self.board.name} has no internal region {name!r}")

    @property
    def external_offset(self) -> int:
        """Where the external flash starts in flash.bin."""
        assert self.board.qemu is not None
        return self.board.qemu.external_base - self.board.internal_flash.base

    def factory_flash(self, loader_image: bytes, loader_key: PublicKey) -> None:
        """Erased flash with the provisioning record and the loader image: what a factory
        writes before the first power-on."""
        self.folder.mkdir(parents=True, exist_ok=True)
        img = bytearray(b"\xff" * RAM_SIZE)
        prov, _ = self._int_region("provisioning")
        rec = provision_record(loader_key)
        img[prov : prov + len(rec)] = rec
        self.write_loader_slot(img, loader_image)
        self.flash.write_bytes(img)

    def write_loader_slot(self, img: bytearray, loader_image: bytes) -> None:
        off, size = self._int_region("loader")
        if len(loader_image) > size:
            raise QemuError(f"loader image of {len(loader_image)} bytes > slot of {size}")
        img[off : off + size] = b"\xff" * size
        img[off : off + len(loader_image)] = loader_image

    def read_flash(self) -> bytes:
        return self.flash.read_bytes()

    def write_flash(self, data: bytes) -> None:
        self.flash.write_bytes(data)

    def external(self, offset: int, size: int) -> bytes:
        with self.flash.open("rb") as f:
            f.seek(self.external_offset + offset)
            return f.read(size)

    # ---- power -------------------------------------------------------------------------
    def _argv(self, cut: tuple[int, bool] | None) -> list[str]:
        return self.command(cut)

    def command(self, cut: tuple[int, bool] | None, *, console: str = "pipe") -> list[str]:
        """QEMU's command line for one power-on. UART0 is the process's stdio: pipes here, a
        pty for the HIL target (``console="stdio"``: Ctrl-C is a byte for the firmware, not
        a signal for QEMU)."""
        assert self.board.qemu is not None
        serial = (["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
                  if console == "stdio" else ["-serial", "stdio"])
        argv = [
            "qemu-system-arm", "-M", f"{self.board.qemu.machine},memory-backend=flash",
            "-object", f"memory-backend-file,id=flash,mem-path={self.flash},size=16M,share=on",
            "-m", "16M", "-display", "none", "-monitor", "none", *serial,
            "-semihosting", "-no-reboot", "-kernel", str(self.stage0_elf),
        ]
        if self.link_port is not None:
            argv += ["-serial", f"tcp:127.0.0.1:{self.link_port}"]
        if self.icount:
            argv += ["-icount", "shift=0,sleep=off"]
        if cut is not None:
            ctl = self.folder / "cut.bin"
            ctl.write_bytes(struct.pack("<IIII", CUT_MAGIC, cut[0], int(cut[1]), 0))
            argv += ["-device", f"loader,file={ctl},addr={CUT_WORD:#x}"]
        return argv

    def power_on(self, *, cut: tuple[int, bool] | None = None, timeout_s: float = 60.0,
                 until: bytes = PROMPT) -> Boot:
        """Start the machine; return once it stopped by itself or printed ``until`` (by
        default: it waits at the REPL)."""
        self.power_off()
        self.boots += 1
        self.proc = processes.start(self._argv(cut), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._buf = b""
        # stage0 halts the machine at an injected power cut: that ends the power-on too
        out = self._read_until(until, timeout_s, allow_exit=True, also=STAGE0_CUT)
        boot = Boot(console=out.decode(errors="replace"))
        if self.proc.poll() is not None:
            boot.stopped = True
            boot.exit_code = self.proc.returncode
            self.proc = None
        return boot

    def watch(self, until: bytes, timeout_s: float = 60.0) -> Boot:
        """Read the console of the running machine until ``until`` or its stop."""
        if self.proc is None:
            raise QemuError("the device is not powered on")
        out = self._read_until(until, timeout_s, allow_exit=True)
        boot = Boot(console=out.decode(errors="replace"))
        if self.proc.poll() is not None:
            boot.stopped = True
            boot.exit_code = self.proc.returncode
            self.proc = None
        return boot

    def readline(self, timeout_s: float) -> str | None:
        """The next console line (without its line end); None when no whole line came within
        ``timeout_s``; "" once the machine stopped and every line it printed was read (then
        :attr:`proc` is None and :attr:`exit_code` its exit status)."""
        if b"\n" not in self._buf and self.proc is not None:
            assert self.proc.stdout is not None
            fd = self.proc.stdout.fileno()
            deadline = time.monotonic() + timeout_s
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ready, _, _ = select.select([fd], [], [], min(left, 0.5))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.exit_code = self.proc.wait()
                    self.proc = None
                    break
                self._buf += chunk
        if b"\n" in self._buf:
            i = self._buf.index(b"\n") + 1
            line, self._buf = self._buf[:i], self._buf[i:]
            return line.decode(errors="replace").rstrip("\r\n")
        if self.proc is None:
            rest, self._buf = self._buf, b""
            return rest.decode(errors="replace")
        return None

    def at_prompt(self) -> bool:
        """The running machine printed the REPL's prompt and waits (nothing after it)."""
        return self.proc is not None and self._buf.endswith(b">>> ")

    def interrupt(self) -> None:
        """Ctrl-C on the console: KeyboardInterrupt in the running code (or its sleep)."""
        if self.proc is not None:
            self._write(b"\x03")

    def cpu_s(self) -> float:
        """Host CPU seconds (user + system) the running QEMU process used so far (Linux)."""
        if self.proc is None:
            raise QemuError("the device is not powered on")
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def idle_cpu(self, seconds: float, *, console: bool = False) -> float:
        """The QEMU process's CPU use while the firmware waits ``seconds`` at its REPL, as a
        fraction of one host core: in ``time.sleep``, or with ``console`` in a
        ``select.poll`` on its console (the agent's wait between polls)."""
        code = f"import time\ntime.sleep({seconds})"
        if console:
            code = ("import select, sys\n_p = select.poll()\n"
                    f"_p.register(sys.stdin, select.POLLIN)\n_p.poll({int(seconds * 1000)})")
        before = self.cpu_s()
        t0 = time.monotonic()
        self.exec(code, timeout_s=seconds + 30)
        return (self.cpu_s() - before) / (time.monotonic() - t0)

    def power_off(self) -> None:
        """Pull the plug (whatever the device is doing)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, *, cut: tuple[int, bool] | None = None, max_boots: int = 8,
            timeout_s: float = 60.0) -> list[Boot]:
        """Power on, and again after each reset the device asks for, until it waits at its
        REPL. ``cut`` applies to the first power-on only."""
        boots = []
        for i in range(max_boots):
            b = self.power_on(cut=cut if i == 0 else None, timeout_s=timeout_s)
            boots.append(b)
            if not b.stopped or b.power_cut:
                return boots
        raise QemuError(f"still resetting after {max_boots} power-ons:\n{boots[-1].console}")

    # ---- console -----------------------------------------------------------------------
    def _read_until(self, marker: bytes, timeout_s: float, *, allow_exit: bool = False,
                    also: bytes | None = None) -> bytes:
        """Console bytes up to ``marker`` (or ``also``, when it comes first)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while marker not in self._buf:
            if also is not None and also in self._buf:
                marker = also
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise QemuError(f"no {marker!r} within {timeout_s:.0f} s; console:\n"
                                f"{self._buf[-2000:].decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    if allow_exit:
                        out, self._buf = self._buf, b""
                        self.proc.wait()
                        return out
                    raise QemuError("the machine stopped; console:\n"
                                    + self._buf[-2000:].decode(errors="replace"))
                self._buf += chunk
        i = self._buf.index(marker) + len(marker)
        out, self._buf = self._buf[:i], self._buf[i:]
        return out

    def _write(self, data: bytes) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def exec(self, code: str, *, timeout_s: float = 60.0) -> str:
        """Run ``code`` at the REPL (raw mode); its output. A device exception is a QemuError;
        a reset or power cut the code causes stops the machine (see :attr:`last_stop`)."""
        if self.proc is None:
            raise QemuError("the device is not powered on")
        self._write(b"\r\x01")
        self._read_until(RAW_PROMPT, 10)
        data = code.encode()
        for i in range(0, len(data), 256):
            self._write(data[i : i + 256])
        self._write(b"\x04")
        self._read_until(b"OK", 60)  # the board compiles the code first: slow on a loaded host
        out = self._read_until(b"\x04", timeout_s, allow_exit=True)
        if self.proc.poll() is not None:
            self.last_stop = Boot(console=out.decode(errors="replace"), stopped=True,
                                  exit_code=self.proc.returncode)
            self.proc = None
            return out.decode(errors="replace")
        err = self._read_until(b"\x04", 10)
        self._read_until(b">", 10)
        self._write(b"\x02")
        self._read_until(PROMPT, 10)
        if err.strip(b"\x04"):
            raise QemuError("device error:\n" + err.decode(errors="replace"))
        return out[:-1].decode(errors="replace")

    # ---- the loader's local link (loader/loader/console.py) -----------------------------
    def enrol(self, records: Mapping[str, bytes]) -> None:
        """Write NVM records at the REPL (schema 1): the identity that enrols the device with a
        scheduler (:func:`suture.formats.identity.enrolment`)."""
        self.exec("from loader import api\n_n = api.nvm()\n" + "".join(
            f"_n.put({key!r}, {value!r}, 1)\n" for key, value in records.items()))

    def put_file(self, remote: str, data: bytes, *, chunk: int = 2048) -> None:
        """Write ``data`` to ``remote`` in the device's littlefs through the REPL."""
        self.exec(f"_f = open({remote!r}, 'wb')")
        for i in range(0, len(data), chunk):
            self.exec(f"_f.write({data[i : i + chunk]!r})")
        self.exec("_f.close()")

    def provision(self, bundle: bytes, version: int) -> dict[str, object]:
        """Factory step on a fresh device: format littlefs, install ``bundle`` as the
        confirmed ``version``."""
        self.exec("from loader.hal import board\nboard().mount(format_if_blank=True)")
        self.put_file("/flash/provision.bundle", bundle)
        self.exec("from loader import console\nconsole.provision('/flash/provision.bundle', "
                  f"{version})\nimport os\nos.remove('/flash/provision.bundle')")
        return self.report()

    def stage(self, envelope: bytes, payload: bytes, *, install: bool = True) -> str:
        """Stage a signed release through the loader (the local update path). The device
        error, if the loader refuses it, is raised as a QemuError."""
        self.put_file("/flash/update.suit", envelope)
        self.put_file("/flash/update.bin", payload)
        try:
            return self.exec("from loader import console\nconsole.stage('/flash/update.suit', "
                             f"'/flash/update.bin', {install})")
        finally:
            if self.proc is not None:
                self.exec("import os\nos.remove('/flash/update.suit')\n"
                          "os.remove('/flash/update.bin')")

    def report(self) -> dict[str, object]:
        """The loader's state: journal record, installed version, loader release."""
        import json

        out = self.exec("from loader import console\nconsole.report()")
        for line in out.splitlines():
            if line.startswith("SUTURE-REPORT "):
                value: dict[str, object] = json.loads(line[len("SUTURE-REPORT ") :])
                return value
        raise QemuError(f"no report in {out!r}")

    def reset(self) -> list[Boot]:
        """Reset from the REPL (machine.reset) and power on again until the REPL waits."""
        self.exec("import machine\nmachine.reset()")
        return self.run()
