"""Ward devices on QEMU: each a QEMU mps2 Cortex-M process running the real firmware (stage0,
the signed MicroPython firmware with the frozen loader, the update agent from the application
bundle) whose second UART is a TCP connection to the ward's one :class:`LinkGateway`.

A device's loop powers it on, reads its console line by line into the same view as a simulated
device's, and powers it on again after every reset it asks for. Faults: a power cut at a boot
(stage0's control block ``cut=(N, half)``: operation N of that power-on, clean or half done,
in stage0 or the loader), or the QEMU process killed part-way through a download. The truth at
the end is read from the device itself (Ctrl-C to its REPL, the loader's records and the digest
of the installed files) and from the journal in its flash file.
"""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import TextIO

from suture.boards.schema import Board
from suture.firmware.qemu_build import QemuFirmware
from suture.formats import identity
from suture.qemu import QemuDevice
from suture.qemu.device import QemuError
from suture.sim.journal import JournalRecord, read_journal
from suture.ward.fleet import MAX_POWER_CUTS, DeviceView, Faults, take_line

BOOT_CUT_RANGE = (1, 60)  # flash operations of a power-on: stage0, recovery, an install
CRASH_LIMIT = 5
TRUTH = """from loader.api import loader
import json
_l = loader()
_r = _l.journal.current
_i = _l.installed()
_n, _d = _l.app_digest()
print('SUTURE-TRUTH ' + json.dumps({'state': _r.name(), 'installed_version': _i.version,
    'installed_digest': _i.digest.hex(), 'app_digest': _d.hex(), 'seq': _r.seq}))
"""


class QemuWardDevice:
    """One QEMU device of a ward; the same interface as :class:`SimulatedDevice` for
    :mod:`suture.ward.run`."""

    def __init__(self, device_id: str, folder: Path, board: Board, firmware: QemuFirmware,
                 link_port: int, rng: random.Random) -> None:
        self.device_id = device_id
        self.board = board
        self.firmware = firmware
        self.dev = QemuDevice(board, firmware.stage0_elf, folder, link_port=link_port)
        self.view = DeviceView(device_id)
        self.rng = rng
        self.target = 0
        self.secret = b""
        self.stop_requested = False
        self.cpu_s = 0.0  # host CPU seconds of all its QEMU processes
        self.agent_up = False  # the running power-on's agent printed an event
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._console: TextIO | None = None
        self._t0 = time.monotonic()

    # ---- provisioning ----------------------------------------------------------------------
    def provision(self, bundle: bytes, version: int, *, scheduler_url: str, secret: bytes,
                  scheduler_key: bytes) -> None:
        """The factory: stage0's record and the signed firmware, the first application
        confirmed, the identity in the NVM store (the transport: the QEMU board's link)."""
        dev = self.dev
        dev.factory_flash(self.firmware.loader_image.read_bytes(), self.firmware.loader_key)
        dev.power_on(timeout_s=120)
        try:
            report = dev.provision(bundle, version)
            if report.get("state") != "CONFIRMED" or report.get("installed_version") != version:
                raise RuntimeError(f"{self.device_id}: provisioning left {report}")
            dev.enrol(identity.enrolment(
                device_id=self.device_id, credential=secret, scheduler_url=scheduler_url,
                scheduler_keys=[scheduler_key], link="qemu"))
        finally:
            dev.power_off()
        self.view.version = version
        self.view.state = "confirmed"

    # ---- the power loop --------------------------------------------------------------------
    def start(self, clock_spec: str, faults: Faults) -> None:
        del clock_spec  # a QEMU device's clock is its own, set by the scheduler's resync
        self._thread = threading.Thread(target=self._loop, args=(faults,),
                                        name=f"qemu-{self.device_id}", daemon=True)
        self._thread.start()

    def set_busy(self, busy: bool) -> None:
        raise NotImplementedError("QEMU devices have no clinical-use flag")

    def request_stop(self) -> None:
        self.stop_requested = True

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        if self._console is not None:
            self._console.close()
            self._console = None
        return True

    def _plan_fault(self, faults: Faults) -> tuple[tuple[int, bool] | None, float | None]:
        """(a cut at this boot, or a fraction of the download after which QEMU is killed)."""
        if self.view.power_cuts >= MAX_POWER_CUTS or self.rng.random() >= faults.power_cuts:
            return None, None
        if self.rng.random() < 0.5:
            return (self.rng.randint(*BOOT_CUT_RANGE), self.rng.random() < 0.5), None
        return None, self.rng.uniform(0.1, 0.9)

    def _loop(self, faults: Faults) -> None:
        dev = self.dev
        while not self.stop_requested:
            cut, kill_at = self._plan_fault(faults)
            with self._lock:
                self.view.running = True
                self.agent_up = False
                dev.power_on(cut=cut, until=b"")
            ended = self._watch(kill_at)
            with self._lock:
                if dev.proc is not None:
                    self.cpu_s += dev.cpu_s()
                self.view.running = False
                if ended == "stop":
                    return  # left running for the truth: read_truth() stops it
                dev.power_off()
            if ended == "reset":
                self.view.resets += 1
            elif ended == "power cut":
                self.view.power_cuts += 1
                self.view.last_event = "power cut"
            else:
                self.view.crashes += 1
                self.view.add_error(ended)
                if self.view.crashes >= CRASH_LIMIT:
                    self.view.state = "crashed"
                    return
                time.sleep(0.5)

    def _watch(self, kill_at: float | None) -> str:
        """Read one power-on's console until it ends: "reset", "power cut", "stop" (asked to)
        or what went wrong."""
        dev = self.dev
        tail: list[str] = []
        while True:
            if self.stop_requested:
                return "stop"
            line = dev.readline(0.25)
            if line is None or line:
                done, size = self.view.progress
                if kill_at is not None and self.view.state == "downloading" and size and \
                        done >= kill_at * size:
                    return "power cut"  # the plug pulled mid-download
            if line is None:
                if dev.at_prompt():
                    return "the firmware's REPL waits: " + " | ".join(tail[-3:])
                continue
            if dev.proc is None and not line:
                text = " ".join(tail)
                if "POWER CUT" in text:
                    return "power cut"
                if "SUTURE-BOOT RESET" in text or "suture: reset" in text:
                    return "reset"
                return f"QEMU stopped ({dev.exit_code}): " + " | ".join(tail[-3:])
            self._log(line)
            if "POWER CUT" in line:
                return "power cut"  # the harness pulls the plug after an injected cut
            if line.startswith("SUTURE-AGENT "):
                self.agent_up = True
            if not take_line(self.view, self.target, line):
                tail.append(line)
                del tail[:-6]

    def _log(self, line: str) -> None:
        """Every console line, with the seconds since the ward started, in console.log."""
        if self._console is None:
            self._console = (self.dev.folder / "console.log").open("a", encoding="utf-8")
        self._console.write(f"{time.monotonic() - self._t0:9.3f} {line}\n")
        self._console.flush()

    # ---- the truth -------------------------------------------------------------------------
    def flash_report(self) -> dict[str, object]:
        """What the device runs, asked once its agent runs (so that Ctrl-C does not stop the
        loader mid-install): Ctrl-C to its REPL, the journal's current record, the installed
        version and digest, and the digest of the files in /app."""
        dev = self.dev
        try:
            with self._lock:
                self._until_agent(120)
                dev.interrupt()
                deadline = time.monotonic() + 30
                while not dev.at_prompt():
                    if time.monotonic() > deadline or dev.proc is None:
                        raise QemuError("no REPL after Ctrl-C")
                    dev.readline(0.3)
                out = dev.exec(TRUTH, timeout_s=60)
                dev.power_off()
            for line in out.splitlines():
                if line.startswith("SUTURE-TRUTH "):
                    value: dict[str, object] = json.loads(line[len("SUTURE-TRUTH "):])
                    return value
            return {"error": f"no truth in {out[-300:]!r}"}
        except QemuError as e:
            dev.power_off()
            return {"error": str(e)[-300:]}

    def _until_agent(self, timeout_s: float) -> None:
        """Power on (again after each reset) until the agent runs."""
        dev = self.dev
        deadline = time.monotonic() + timeout_s
        while not (self.agent_up and dev.proc is not None):
            if time.monotonic() > deadline:
                raise QemuError(f"the agent did not start within {timeout_s:.0f} s")
            if dev.proc is None:
                self.agent_up = False
                dev.power_on(until=b"")
            line = dev.readline(0.5)
            if line is not None and line.startswith("SUTURE-AGENT "):
                self.agent_up = True
            if dev.at_prompt():
                raise QemuError("the application ended at the REPL")

    def journal(self) -> list[JournalRecord]:
        region = next(r for r in self.board.external_flash.regions if r.name == "journal")
        start = self.dev.external_offset + region.offset
        image = self.dev.flash.read_bytes()[start : start + region.size]
        return read_journal(image, 0, self.board.external_flash.sector)

    def external_erases(self) -> int | None:
        return None  # QEMU's flash counts no erases
