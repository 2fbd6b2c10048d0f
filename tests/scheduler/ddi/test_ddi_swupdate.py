"""The real client: Debian's SWUpdate in suricatta mode against the scheduler on loopback.

The scheduler runs in uvicorn (the ward's, ``suture.ward.server``) with a 10 s polling policy;
SWUpdate is started with ``-p 2`` (its own poll delay) and must follow the scheduler's
``config.polling.sleep`` instead. Its images are CMS-signed ``.swu`` files (``swu.py``) whose
one image SWUpdate's ``rawfile`` handler writes to a file of the test; each is the payload of a
SUIT release the scheduler verified at import. A restart with ``-c 2`` stands for the device's
reboot into the new version, after which SWUpdate reports success (docs/ddi.md).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import swu
from sched_world import CLASS_ID, VENDOR_ID, SimDevice, make_envelope
from sqlalchemy import select
from suture import keys
from suture.scheduler.ddi import service
from suture.scheduler.models import Device, Release, Rollout, RolloutDevice
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.services.schedules import ScheduleContext
from suture.scheduler.team import approve_and_start
from suture.ward import server as ward_server
from suture.ward.clock import ScaledClock
from suture.ward.server import SchedulerSettings, WardScheduler

pytestmark = pytest.mark.slow

POLL_S = 10
#: SWUpdate's control sockets have fixed paths (/tmp/sockinstctrl, /tmp/swupdateprog): one
#: SWUpdate at a time on the machine, whatever the test workers.
LOCK = Path("/tmp/suture-swupdate-tests.lock")


@dataclass
class Seen:
    """The requests the scheduler answered: (monotonic time, method, path, status)."""

    requests: list[tuple[float, str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, app: Any) -> Any:
        async def recorded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start":
                    with self.lock:
                        self.requests.append((time.monotonic(), scope["method"], scope["path"],
                                              message["status"]))
                await send(message)

            await app(scope, receive, sending)

        return recorded

    def polls(self, device_id: str) -> list[float]:
        with self.lock:
            return [t for t, m, p, s in self.requests
                    if m == "GET" and p == f"/DEFAULT/controller/v1/{device_id}" and s == 200]

    def paths(self, method: str) -> list[str]:
        with self.lock:
            return [p for _, m, p, _ in self.requests if m == method]


class WardWorld:
    """Enough of ``sched_world.World`` for ``SimDevice``: the ward's database and clock."""

    def __init__(self, ward: WardScheduler) -> None:
        self.ward = ward
        self.clock = ward.clock
        self.scheduler_key = ward.signing_key
        self.ctx = ScheduleContext(key=ward.signing_key, public_url=ward.url,
                                   poll_interval_s=POLL_S, poll_jitter_s=0,
                                   forced_window_s=3600)
        self.release_component: dict[int, str] = {}

    def session(self) -> Any:
        return self.ward.sessions()

    def previous_of(self, release_id: int) -> int:
        return 1


@dataclass
class Rig:
    ward: WardScheduler
    seen: Seen
    tmp: Path
    vendor: keys.PrivateKey
    signer: tuple[Any, Any, Path]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def team(self) -> Any:
        return self.ward.team

    def now(self) -> int:
        return self.ward.clock.now()

    def device(self, device_id: str, *, linux: bool) -> str | None:
        devices.add_device(self.ward.sessions(), create=DeviceCreate(
            id=device_id, board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID, groups=["ward-3"],
            installed={"rootfs": 1}), root_secret=bytes.fromhex(self.ward.root_secret),
            actor=self.team.device_manager, now=self.now())
        if not linux:
            return None
        return service.issue_target_token(self.ward.sessions(), device_id=device_id,
                                          tenant="DEFAULT", kind="linux",
                                          actor=self.team.device_manager, now=self.now())

    def release(self, seq: int, image: bytes, target: Path, *, corrupt: bool = False
                ) -> Release:
        """A SUIT release whose payload is a signed ``.swu`` writing ``image`` to ``target``;
        ``corrupt``: the ``.swu`` declares another SHA-256 for its image."""
        key, cert, _ = self.signer
        data = swu.swu(key, cert, image, target=target, version=f"{seq}.0",
                       sha256="0" * 64 if corrupt else None)
        envelope, payload = make_envelope(self.vendor, self.tmp, seq, "rootfs", payload=data)
        sbom_file = self.tmp / f"rootfs-{seq}.cdx.json"
        extra: dict[str, Any] = {"sbom": sbom_file.read_bytes() if sbom_file.exists() else None}
        return releases.import_release(
            self.ward.sessions(), envelope=envelope, payload=payload, notes=None,
            trust_anchors=[self.vendor.public_key()], actor=self.team.release_manager,
            now=self.now(), **extra)

    def rollout(self, release_id: int, **spec: Any) -> Rollout:
        rollout = rollouts.create_rollout(
            self.ward.sessions(), spec=RolloutCreate(release_id=release_id, name="linux",
                                                     target_groups=["ward-3"], **spec),
            actor=self.team.rollout_operator, now=self.now())
        return approve_and_start(self.ward.sessions, self.team, rollout.id, now=self.now())

    def swupdate(self, device_id: str, token: str, *, confirm: bool = False
                 ) -> subprocess.Popen[bytes]:
        """SWUpdate in suricatta mode for ``device_id``; ``confirm``: as after the reboot into
        an installed update, report it successful (``-c 2``)."""
        suricatta = (f"-t DEFAULT -u {self.ward.url} -i {device_id} -k {token} -p 2"
                     + (" -c 2" if confirm else ""))
        log = (self.tmp / f"swupdate-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [SWUPDATE, "-v", "-H", f"{swu.BOARD}:{swu.HARDWARE_REVISION}", "-k",
             str(self.signer[2]), "-u", suricatta],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True,
            env={**os.environ, "TMPDIR": str(self.tmp)})
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.tmp.glob("swupdate-*.log")))

    def entry(self, rollout_id: int, device_id: str) -> RolloutDevice:
        with self.ward.sessions() as session:
            entry = session.get(RolloutDevice, (rollout_id, device_id))
            assert entry is not None
            return entry

    def rollout_row(self, rollout_id: int) -> Rollout:
        with self.ward.sessions() as session:
            rollout = session.get(Rollout, rollout_id)
            assert rollout is not None
            return rollout

    def wait(self, what: str, done: Callable[[], bool], timeout: float = 90,
             step: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout} s\n{self.log()}")
            if step is not None:
                step()
            time.sleep(0.5)


SWUPDATE = shutil.which("swupdate") or "/usr/bin/swupdate"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    if not Path(SWUPDATE).exists():
        pytest.fail("swupdate is not installed: tools/install-system-deps.sh installs it")
    if os.geteuid() != 0:
        pytest.fail("SWUpdate runs as root (it refuses to start otherwise)")
    seen = Seen()
    real_create_app = ward_server.create_app

    def recording_app(*args: Any, **kwargs: Any) -> Any:
        return seen.wrap(real_create_app(*args, **kwargs))

    monkeypatch.setattr(ward_server, "create_app", recording_app)
    LOCK.touch(exist_ok=True)
    with LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ward = WardScheduler(tmp_path / "scheduler", ScaledClock(1.0),
                             keys.generate_private_key("ES256"),
                             SchedulerSettings(poll_interval_s=POLL_S, poll_jitter_s=0,
                                               advance_interval_s=0.5))
        ward.start()
        rig = Rig(ward, seen, tmp_path, ward.vendor_key, swu.signer(tmp_path))
        try:
            yield rig
        finally:
            for process in rig.processes:
                rig.stop(process)
            ward.stop()


def _installed(rig: Rig, device_id: str) -> Mapping[str, int]:
    with rig.ward.sessions() as session:
        device = session.execute(select(Device).where(Device.id == device_id)).scalar_one()
        return dict(device.installed)


def test_swupdate_joins_a_rollout_with_three_microcontrollers_in_waves(rig: Rig) -> None:
    token = rig.device("linux-01", linux=True)
    assert token is not None
    world = WardWorld(rig.ward)
    mcus = [SimDevice(world, f"mcu-0{i}", {"rootfs": 1})  # type: ignore[arg-type]
            for i in range(1, 4)]
    for mcu in mcus:
        rig.device(mcu.id, linux=False)

    # Registered and polling at the scheduler's interval, not at its own -p 2.
    client = rig.swupdate("linux-01", token)
    rig.wait("three polls", lambda: len(rig.seen.polls("linux-01")) >= 3, timeout=60)
    polls = rig.seen.polls("linux-01")
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert all(POLL_S - 1.5 <= gap <= 3 * POLL_S for gap in gaps), gaps
    assert "/DEFAULT/controller/v1/linux-01/configData" not in rig.seen.paths("GET")

    target = rig.tmp / "linux-01-rootfs.img"
    image = os.urandom(4096) + b"suture rootfs #2\n"
    release = rig.release(2, image, target)
    world.release_component[release.id] = "rootfs"
    rollout = rig.rollout(release.id, waves=["1", "100%"], error_min_sample=1)

    def mcus_follow() -> None:
        for mcu in mcus:
            mcu.follow()

    # SWUpdate downloads the artefact and installs it with its rawfile handler...
    rig.wait("the image installed", lambda: target.exists()
             and target.read_bytes() == image, step=mcus_follow)
    downloads = [p for p in rig.seen.paths("GET") if "/softwaremodules/" in p]
    assert downloads == [f"/DEFAULT/controller/v1/linux-01/softwaremodules/{release.id}"
                         f"/artifacts/rootfs-2.swu"]
    rig.wait("SWUpdate's proceeding feedback", lambda: rig.entry(
        rollout.id, "linux-01").state == "downloading", step=mcus_follow)
    # ... and, once restarted as after the reboot into it, reports success.
    rig.stop(client)
    rig.swupdate("linux-01", token, confirm=True)
    rig.wait("success reported", lambda: rig.entry(rollout.id, "linux-01").state == "succeeded",
             step=mcus_follow)
    assert _installed(rig, "linux-01") == {"rootfs": 2}
    rig.wait("the rollout completed", lambda: rig.rollout_row(rollout.id).state == "completed",
             step=mcus_follow, timeout=120)
    done = rig.rollout_row(rollout.id)
    assert (done.wave_count, done.current_wave) == (2, 1)
    for mcu in mcus:
        assert _installed(rig, mcu.id) == {"rootfs": 2}
    feedback = [p for p in rig.seen.paths("POST") if p.endswith("/feedback")]
    assert feedback
    assert all(p.startswith("/DEFAULT/controller/v1/linux-01/deploymentBase/")
                            for p in feedback)


def test_a_failing_artefact_counts_towards_the_error_threshold(rig: Rig) -> None:
    token = rig.device("linux-01", linux=True)
    assert token is not None
    target = rig.tmp / "never-written.img"
    release = rig.release(2, b"an image whose digest the .swu gets wrong\n", target,
                          corrupt=True)
    rollout = rig.rollout(release.id, error_threshold=0.2, error_min_sample=1)
    rig.swupdate("linux-01", token)
    rig.wait("the failure reported", lambda: rig.entry(rollout.id, "linux-01").state == "failed")
    entry = rig.entry(rollout.id, "linux-01")
    assert entry.detail.startswith("DDI client reported failure"), entry.detail
    rig.wait("the rollout paused", lambda: rig.rollout_row(rollout.id).state == "paused")
    assert "error threshold" in rig.rollout_row(rollout.id).status_reason
    assert not target.exists()
    assert _installed(rig, "linux-01") == {"rootfs": 1}
