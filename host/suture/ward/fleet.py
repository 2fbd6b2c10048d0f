"""Simulated devices of a ward: provisioning (flash images, keys, credential, identity in the
NVM store) and the MicroPython process that runs the loader and the agent, restarted by the
harness after every reset and power cut."""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from suture.formats import error_codes, identity
from suture.keys import PrivateKey, public_key_bytes
from suture.scheduler.credentials import DEVICE_ID_PATTERN
from suture.sim.board import BoardGeometry, small_geometry
from suture.sim.device import EXIT_OK, EXIT_POWERCUT, EXIT_RESET, SimBoard, SimDevice, _tool
from suture.sim.journal import JournalRecord
from suture.sim.testing import identity_for

EXIT_CRASH_LIMIT = 5
MAX_POWER_CUTS = 3
HEAPSIZE = 256 * 1024  # as boards/sim/board.toml
CUT_RANGE = (1, 400)  # a cut lands after this many flash operations of one process


def ward_geometry(payload_size: int = 0) -> BoardGeometry:
    """A board sized for the example application (or a payload of ``payload_size`` bytes)."""
    slot = max(64 * 1024, -(-(payload_size + 16 * 1024) // 4096) * 4096)
    internal = max(256 * 1024, -(-(3 * slot) // 4096) * 4096)
    return small_geometry(internal_size=internal, slot_size=slot, nvm_sectors=8)


@dataclass
class DeviceView:
    """What the live view and the summary show of one device."""

    device_id: str
    state: str = "provisioned"
    version: int = 0
    progress: tuple[int, int] = (0, 0)
    last_event: str = ""
    errors: list[str] = field(default_factory=list)
    resets: int = 0
    power_cuts: int = 0
    crashes: int = 0
    busy: bool = False
    running: bool = False
    refused: int = 0
    clock_skew_s: int = 0  # how wrong its clock starts (fault injection)
    resyncs: int = 0  # verified clock/counter resyncs from the scheduler
    heap_peak: int = 0  # live heap after a collection, highest seen at a flash operation
    updated_at: float | None = None  # time.monotonic() when it confirmed the target version

    def add_error(self, text: str) -> None:
        self.errors.append(text[:160])
        del self.errors[:-5]


@dataclass
class Faults:
    """Fault injection: probabilities in [0, 1]."""

    power_cuts: float = 0.0
    busy: float = 0.0
    busy_s: float = 20.0  # simulated seconds a busy device stays in clinical use
    heap_sample: bool = False  # measure the live heap at every flash operation (slower)


class SimulatedDevice:
    """One device folder and its process loop (a thread)."""

    def __init__(self, device_id: str, workdir: Path, geometry: BoardGeometry,
                 vendor_key: PrivateKey, lib: Path, rng: random.Random) -> None:
        if not __import__("re").match(DEVICE_ID_PATTERN, device_id):
            raise ValueError(f"bad device id {device_id!r}")
        self.device_id = device_id
        ident = identity_for(public_key_bytes(vendor_key.public_key()))
        self.board = SimBoard(workdir, geometry, ident, heapsize=HEAPSIZE)
        self.device = SimDevice(self.board, lib=lib)
        self.lib = lib
        self.view = DeviceView(device_id)
        self.rng = rng
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self.stop_requested = False
        self.target = 0  # the version being rolled out
        self.secret = b""  # the credential the scheduler issued (set at registration)
        #: Runs before each power-on of the device's process: what comes before the loader on
        #: a board (stage0, which installs a staged loader image); the simulator has none.
        self.before_power_on: Callable[[], object] | None = None

    # ---- provisioning ----------------------------------------------------------------------
    def provision(self, bundle: bytes, version: int, *, scheduler_url: str, secret: bytes,
                  scheduler_key: bytes) -> None:
        """Blank flash, first application confirmed, identity in the NVM store."""
        self.board.create()
        name = self.board.put_file("provision.bundle", bundle)
        records = identity.enrolment(device_id=self.device_id, credential=secret,
                                     scheduler_url=scheduler_url, scheduler_keys=[scheduler_key])
        cmds: list[list[str]] = [["provision", name, str(version)]]
        for key, value in records.items():
            cmds.append(["nvm-put", key, value.hex(), "1"])
        result = self.device.run(*cmds)
        if not result.ok:
            raise RuntimeError(f"{self.device_id}: provisioning failed: "
                               f"{result.error or result.stderr.strip()[-300:]}")
        (self.board.workdir / "provision.bundle").unlink()
        self.view.version = version
        self.view.state = "confirmed"

    # ---- the process loop ------------------------------------------------------------------
    def start(self, clock_spec: str, faults: Faults, on_event: object = None) -> None:
        self._thread = threading.Thread(target=self._loop, args=(clock_spec, faults),
                                        name=f"dev-{self.device_id}", daemon=True)
        self._thread.start()

    def set_busy(self, busy: bool) -> None:
        flag = self.board.workdir / "patient-connected"
        if busy:
            flag.write_text("in clinical use\n")
        else:
            flag.unlink(missing_ok=True)
        self.view.busy = busy

    def request_stop(self) -> None:
        self.stop_requested = True
        (self.board.workdir / "stop").write_text("stop\n")

    def join(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive() and self._proc is not None:
            self._proc.kill()  # our own child, after it ignored the stop file
            self._thread.join(5)
        return not self._thread.is_alive()

    def _env(self, clock_spec: str, cut: int | None, heap: bool) -> dict[str, str]:
        env = dict(os.environ)
        if heap:
            env["SUTURE_HEAP_SAMPLE"] = "1"
        env["MICROPYPATH"] = str(self.lib)
        env["SUTURE_CLOCK"] = clock_spec
        env.pop("SUTURE_CUT_AFTER", None)
        env.pop("SUTURE_CUT_TORN", None)
        if cut is not None:
            env["SUTURE_CUT_AFTER"] = str(cut)
            if self.rng.random() < 0.5:
                env["SUTURE_CUT_TORN"] = str(self.rng.randint(1, 64))
        return env

    def _loop(self, clock_spec: str, faults: Faults) -> None:
        mp = str(_tool("micropython"))
        while not self.stop_requested:
            cut = None
            if self.view.power_cuts < MAX_POWER_CUTS and self.rng.random() < faults.power_cuts:
                cut = self.rng.randint(*CUT_RANGE)
            if self.before_power_on is not None:
                try:
                    self.before_power_on()
                except Exception as exc:  # the device does not start: the view says why
                    self.view.add_error(f"before power-on: {exc}")
                    self.view.state = "crashed"
                    break
            self.view.running = True
            proc = subprocess.Popen(
                [mp, "-X", f"heapsize={self.board.heapsize}", "run.py", "boot", "+", "app"],
                cwd=self.board.workdir, env=self._env(clock_spec, cut, faults.heap_sample),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, bufsize=1)
            self._proc = proc
            assert proc.stdout is not None
            other: list[str] = []
            for line in proc.stdout:
                if not self._line(line.rstrip("\n")):
                    other.append(line.rstrip("\n"))
                    del other[:-3]
            err = proc.stderr.read() if proc.stderr is not None else ""
            err = " | ".join([*other, *err.strip().splitlines()[-3:]])
            code = proc.wait()
            self.view.running = False
            if code == EXIT_OK:
                break  # the agent stopped by itself (stop file)
            if code == EXIT_RESET:
                self.view.resets += 1
            elif code == EXIT_POWERCUT:
                self.view.power_cuts += 1
                self.view.last_event = "power cut"
            else:
                self.view.crashes += 1
                self.view.add_error(f"exit {code}: {err}")
                if self.view.crashes >= EXIT_CRASH_LIMIT:
                    self.view.state = "crashed"
                    break
                time.sleep(0.5)

    def _line(self, line: str) -> bool:
        """Take in one output line; False when it is not one of the simulator's lines."""
        return take_line(self.view, self.target, line)

    # ---- the truth, from the flash images ---------------------------------------------------
    def flash_report(self) -> dict[str, object]:
        """What the flash holds, read by the loader (mount only, no boot): journal state,
        installed version and digest, and the digest of the installed files."""
        result = self.device.run(["report"])
        if not result.ok:
            return {"error": f"{result.error or result.stderr.strip()[-200:]}"}
        return result.report()

    def journal(self) -> list[JournalRecord]:
        """Every valid journal record of its external flash, oldest first."""
        return self.board.read_journal()

    def external_erases(self) -> int:
        return sum(self.board.erase_counters("external"))


def take_line(v: DeviceView, target: int, line: str) -> bool:
    """Take one line a device printed into its view (agent events, the simulator's result and
    error lines); False when it is none of those."""
    if line.startswith("SUTURE-AGENT "):
        try:
            ev = json.loads(line[len("SUTURE-AGENT "):])
        except json.JSONDecodeError:
            return False
        kind = ev.get("ev")
        if kind == "state":
            v.state = str(ev.get("state"))
            v.version = int(ev.get("installed", v.version))
            if v.state == "confirmed" and v.version == target and v.updated_at is None:
                v.updated_at = time.monotonic()
            if v.state != "downloading":
                v.progress = (0, 0)
        elif kind == "boot":
            v.version = int(ev.get("installed", v.version))
        elif kind == "download":
            v.progress = (int(ev["offset"]), int(ev["size"]))
            v.state = "downloading"
        elif kind == "progress":
            v.progress = (int(ev["done"]), int(ev["size"]))
        elif kind == "error":
            v.add_error(f"{ev.get('where')}: {ev.get('message')}{_code_name(ev)}")
        elif kind == "refused":
            v.refused += 1
            v.add_error(f"schedule refused: {ev.get('message')}{_code_name(ev)}")
        elif kind == "wait":
            v.last_event = str(ev.get("reason"))
        elif kind == "resync":
            v.resyncs += 1
        if kind not in ("progress", "wait"):
            v.last_event = kind
    elif line.startswith("SUTURE-RESULT "):
        try:
            peak = int(json.loads(line[len("SUTURE-RESULT "):]).get("heap_peak", 0))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            peak = 0
        v.heap_peak = max(v.heap_peak, peak)
    elif line.startswith("SUTURE-ERROR "):
        v.add_error(line[len("SUTURE-ERROR "):])
    elif not line.startswith("SUTURE-") and not line.startswith("APP "):
        return False
    return True


def _code_name(ev: dict[str, object]) -> str:
    """` [loader NoSpaceError]`: the name of an event's error code, from the device's tables."""
    code = ev.get("code")
    if type(code) is not int or not code:
        return ""
    return f" [{error_codes.load().name(code)}]"
