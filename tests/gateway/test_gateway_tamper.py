"""A hostile gateway (the gateway is not trusted: device authentication is end to end). The
simulated board (unix port) updates over a pty through a gateway that alters one byte of the
payload, of a schedule, or of a report; the device or the scheduler catches each, nothing
unverified is ever staged as installable, and a clean gateway afterwards completes the update."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from link_harness import PtyLine, Ward, enrol, installed, roll_out, run_until_confirmed, start_ward
from suture.gateway import RequestRecord, SerialGateway
from suture.keys import PrivateKey
from suture.scheduler.schemas import RolloutCreate
from suture.scheduler.services import rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import State
from suture.ward.fleet import Faults, SimulatedDevice

BEYOND_DOWNLOAD = (State.STAGED, State.BACKUP, State.INSTALLING, State.TRIAL, State.CONFIRMED)


class ByteFlip:
    """Flips one byte in the middle of what the gateway relays for paths ending with
    ``suffix`` in ``direction``, while ``on`` is set."""

    def __init__(self, direction: str, suffix: str) -> None:
        self.direction = direction
        self.suffix = suffix
        self.on = threading.Event()
        self.on.set()
        self.altered = 0

    def __call__(self, direction: str, method: str, path: str, data: bytes) -> bytes:
        if not self.on.is_set() or direction != self.direction or not path.endswith(self.suffix) \
                or not data:
            return data
        self.altered += 1
        b = bytearray(data)
        b[len(b) // 2] ^= 0x20
        return bytes(b)


@pytest.fixture
def line() -> Iterator[PtyLine]:
    line = PtyLine(seed=17).start()
    yield line
    line.close()


def _run_for(ward: Ward, dev: SimulatedDevice, seconds: float) -> None:
    dev.start(ward.sched.clock.device_spec(), Faults())
    try:
        time.sleep(seconds)
    finally:
        dev.request_stop()
        dev.join(30)
    dev.stop_requested = False
    (dev.board.workdir / "stop").unlink(missing_ok=True)


def _still_on_v1(ward: Ward, dev: SimulatedDevice) -> None:
    """Application 1 still installed and intact; no version-2 record ever got past the
    download (a staged payload is one whose digest the signed manifest names)."""
    assert dev.view.crashes == 0, dev.view.errors
    report = dev.flash_report()
    assert report.get("installed_version") == 1, report
    # FAILED: the loader refused the staged bytes (their digest is not the manifest's)
    assert report.get("state") in ("CONFIRMED", "DOWNLOADING", "FAILED"), report
    assert report.get("app_digest") == report.get("installed_digest"), report
    beyond = [r for r in dev.journal() if r.version == 2 and r.state in BEYOND_DOWNLOAD]
    assert beyond == [], beyond
    assert installed(ward, dev.device_id) == {"app": 1}


def _retry(ward: Ward) -> None:
    """The operator's answer to a device that reported a failed download: a new rollout of
    the same release (the first one stopped at its error threshold)."""
    sessions = ward.sched.sessions
    now = ward.sched.clock.now()
    first = rollouts.list_rollouts(sessions())[-1]
    if first.state not in ("completed", "aborted"):
        rollouts.abort_rollout(sessions(), rollout_id=first.id, revert=False,
                               actor=ward.sched.team.rollout_operator, now=now)
    r = rollouts.create_rollout(sessions(), spec=RolloutCreate(
        name="gw-retry", release_id=first.release_id, target_groups=["gw"], waves=["100%"],
        error_threshold=0.5, error_min_sample=1, on_error="pause"),
        actor=ward.sched.team.rollout_operator, now=now)
    approve_and_start(sessions, ward.sched.team, r.id, now=now)


def _then_clean(ward: Ward, dev: SimulatedDevice, line: PtyLine) -> None:
    """A clean gateway on the same port: the update completes."""
    with SerialGateway(ward.sched.public_url, [line.gateway_path]) as gw:
        assert run_until_confirmed(ward, dev, 150), dev.view
    assert gw.stats.refused == 0
    report = dev.flash_report()
    assert report.get("installed_version") == 2, report
    assert report.get("state") == "CONFIRMED", report
    assert report.get("app_digest") == report.get("installed_digest"), report


def test_altered_payload_byte_is_never_installed(tmp_path: Path, loader_lib: Path,
                                                 signing_key: PrivateKey, line: PtyLine) -> None:
    ward = start_ward(tmp_path, signing_key, filler=16 * 1024)
    try:
        dev = enrol(ward, "bed-evil-1", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        flip = ByteFlip("response", "/payload")
        with SerialGateway(ward.sched.public_url, [line.gateway_path], tamper=flip):
            roll_out(ward)
            _run_for(ward, dev, 25)
        assert flip.altered > 0  # the gateway really altered the download
        assert dev.view.errors, "the device did not notice"
        _still_on_v1(ward, dev)
        _retry(ward)
        _then_clean(ward, dev, line)
    finally:
        ward.sched.stop()


def test_altered_schedule_is_refused(tmp_path: Path, loader_lib: Path,
                                     signing_key: PrivateKey, line: PtyLine) -> None:
    ward = start_ward(tmp_path, signing_key)
    try:
        dev = enrol(ward, "bed-evil-2", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        flip = ByteFlip("response", "/schedule")
        with SerialGateway(ward.sched.public_url, [line.gateway_path], tamper=flip):
            roll_out(ward)
            _run_for(ward, dev, 15)
        assert flip.altered > 0
        assert dev.view.refused > 0, dev.view  # the schedule's signature caught it
        assert dev.view.progress == (0, 0)
        _still_on_v1(ward, dev)
        _then_clean(ward, dev, line)
    finally:
        ward.sched.stop()


def test_altered_report_is_refused_by_the_scheduler(tmp_path: Path, loader_lib: Path,
                                                    signing_key: PrivateKey,
                                                    line: PtyLine) -> None:
    ward = start_ward(tmp_path, signing_key)
    log: list[RequestRecord] = []
    try:
        dev = enrol(ward, "bed-evil-3", tmp_path / "dev", loader_lib, "tty:" + line.device_path)
        flip = ByteFlip("request", "/reports")
        with SerialGateway(ward.sched.public_url, [line.gateway_path], tamper=flip,
                           log=log.append):
            roll_out(ward)
            _run_for(ward, dev, 25)
        assert flip.altered > 0
        reports = [r for r in log if r.path.endswith("/reports")]
        assert reports
        assert all(r.status in (400, 401) for r in reports), reports  # the MAC caught it
        assert any(r.status == 401 for r in reports), reports
        # the device went ahead on its own, the scheduler believed none of it
        assert installed(ward, dev.device_id) == {"app": 1}
        _then_clean(ward, dev, line)  # the queued reports get through
    finally:
        ward.sched.stop()
