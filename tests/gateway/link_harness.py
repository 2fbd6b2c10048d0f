"""A serial line for the gateway tests: two ptys joined by a relay (the device opens one, the
gateway the other), which can drop, duplicate, corrupt, truncate, delay and reorder the frames
it carries; and a simulated board (unix port) updating itself through the gateway against the
real scheduler."""

from __future__ import annotations

import os
import random
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from suture import keys
from suture.keys import PrivateKey
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import Release, build_release
from suture.ward.server import SchedulerSettings, WardScheduler

REPO = Path(__file__).resolve().parents[2]


@dataclass
class LinkFaults:
    """Per-frame probabilities, applied in both directions."""

    drop: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    truncate: float = 0.0
    delay: float = 0.0  # held back and sent after the next frame (reordered)
    counts: dict[str, int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.counts.values())


def _raw(fd: int) -> None:
    tty.setraw(fd)
    a = termios.tcgetattr(fd)
    a[6][termios.VMIN] = 0
    a[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, a)


class PtyLine:
    """Device pty <-> relay <-> gateway pty. The relay holds both slave ends open too, so
    either side may close and reopen its port (a reset, a gateway restart)."""

    def __init__(self, faults: LinkFaults | None = None, seed: int = 1) -> None:
        self.faults = faults or LinkFaults()
        self.rng = random.Random(seed)
        self.enabled = threading.Event()
        self._dm, self._ds = os.openpty()
        self._gm, self._gs = os.openpty()
        for fd in (self._ds, self._gs):
            _raw(fd)
        self.device_path = os.ttyname(self._ds)
        self.gateway_path = os.ttyname(self._gs)
        self.bytes = {"to_gateway": 0, "to_device": 0}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(self._dm, self._gm, "to_gateway"),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self._gm, self._dm, "to_device"),
                             daemon=True),
        ]

    def start(self) -> PtyLine:
        for t in self._threads:
            t.start()
        return self

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for fd in (self._dm, self._ds, self._gm, self._gs):
            os.close(fd)

    def _fault(self, name: str, p: float) -> bool:
        if p and self.enabled.is_set() and self.rng.random() < p:
            with self._lock:
                self.faults.counts[name] = self.faults.counts.get(name, 0) + 1
            return True
        return False

    def _frames(self, frame: bytes) -> list[bytes]:
        """What goes on for one delimited frame."""
        f = self.faults
        if self._fault("drop", f.drop):
            return []
        if len(frame) > 2 and self._fault("corrupt", f.corrupt):
            b = bytearray(frame)
            i = self.rng.randrange(len(b) - 1)
            b[i] ^= 1 << self.rng.randrange(8)
            frame = bytes(b)
        if len(frame) > 2 and self._fault("truncate", f.truncate):
            cut = self.rng.randrange(1, len(frame) - 1)
            frame = frame[: len(frame) - 1 - cut] + b"\x00"
        if self._fault("duplicate", f.duplicate):
            return [frame, frame]
        return [frame]

    def _pump(self, src: int, dst: int, name: str) -> None:
        pending = bytearray()
        held: bytes | None = None
        while not self._stop.is_set():
            r, _, _ = select.select([src], [], [], 0.05)
            if not r:
                if pending and not self.enabled.is_set():
                    self._write(dst, bytes(pending), name)  # no delimiter yet: pass it on
                    pending.clear()
                if held is not None:
                    self._write(dst, held, name)
                    held = None
                continue
            try:
                data = os.read(src, 65536)
            except OSError:
                time.sleep(0.01)  # the other end is closed for now
                continue
            pending += data
            while True:
                z = pending.find(0)
                if z < 0:
                    break
                frame = bytes(pending[: z + 1])
                del pending[: z + 1]
                for out in self._frames(frame):
                    if held is None and self._fault("delay", self.faults.delay):
                        held = out
                        continue
                    self._write(dst, out, name)
                    if held is not None:
                        self._write(dst, held, name)
                        held = None

    def _write(self, fd: int, data: bytes, name: str) -> None:
        self.bytes[name] += len(data)
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[n:]


@dataclass
class Ward:
    sched: WardScheduler
    base: Release
    target: Release
    vendor: PrivateKey


def start_ward(workdir: Path, vendor: PrivateKey, filler: int = 0) -> Ward:
    sched = WardScheduler(workdir / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    ward = Ward(sched, build_release(1, vendor, filler=filler),
                build_release(2, vendor, filler=filler), vendor)
    sched.start()
    return ward


def enrol(ward: Ward, device_id: str, workdir: Path, lib: Path, link: str) -> SimulatedDevice:
    """A simulated board with application #1, registered, its transport the device link."""
    sched = ward.sched
    _, cred = devices.add_device(
        sched.sessions(),
        create=DeviceCreate(id=device_id, board="sim", vendor_id=str(VENDOR_ID),
                            class_id=str(CLASS_ID), ward="gw", groups=["gw"],
                            installed={"app": 1}),
        root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
        now=sched.clock.now())
    dev = SimulatedDevice(device_id, workdir, ward_geometry(len(ward.target.payload)),
                          ward.vendor, lib, random.Random(3))
    dev.provision(ward.base.payload, 1, scheduler_url=sched.public_url,
                  secret=bytes.fromhex(cred.secret_hex),
                  scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
    result = dev.device.run(["nvm-put", "net.link", link.encode().hex(), "1"])
    assert result.ok, result.stdout + result.stderr
    dev.target = 2
    return dev


def roll_out(ward: Ward) -> None:
    sched = ward.sched
    rel = releases.import_release(sched.sessions(), envelope=ward.target.envelope,
                                  payload=ward.target.payload, sbom=ward.target.sbom, notes="v2",
                                  trust_anchors=[ward.vendor.public_key()],
                                  actor=sched.team.release_manager)
    now = sched.clock.now()
    r = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
        name="gw", release_id=rel.id, target_groups=["gw"], waves=["100%"],
        error_threshold=0.5, error_min_sample=1, on_error="pause"),
        actor=sched.team.rollout_operator, now=now)
    approve_and_start(sched.sessions, sched.team, r.id, now=now)


def installed(ward: Ward, device_id: str) -> dict[str, int]:
    device, _ = devices.get_device(ward.sched.sessions(), device_id=device_id)
    return dict(device.installed)


def run_until_confirmed(ward: Ward, dev: SimulatedDevice, timeout_s: float,
                        during: object = None, power_cuts: float = 0.0) -> bool:
    """Run the device until the scheduler records version 2 and the device confirmed it;
    ``during(dev)`` is called every 50 ms meanwhile."""
    dev.start(ward.sched.clock.device_spec(), Faults(power_cuts=power_cuts))
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if callable(during):
                during(dev)
            if dev.view.state == "confirmed" and dev.view.version == 2 \
                    and installed(ward, dev.device_id) == {"app": 2}:
                return True
            time.sleep(0.05)
        return False
    finally:
        dev.request_stop()
        dev.join(30)
