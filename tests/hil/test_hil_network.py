"""Update over the network: the board, provisioned and enrolled by `suture.boardops.provision`,
runs the update agent against a real scheduler on loopback; a rollout brings it from version 1
to version 2 (download, stage, install at a reset, trial, confirm)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from suture import keys
from suture.boardops.provision import ProvisionRequest, provision
from suture.boardops.scheduler_client import SchedulerClient
from suture.hil.dut import MicroPythonDut
from suture.keys import PrivateKey
from suture.scheduler.schemas import RolloutCreate
from suture.scheduler.services import releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.release import Release, build_release
from suture.ward.server import WardScheduler

pytestmark = [pytest.mark.hil, pytest.mark.hil_needs("loopback_network")]


@pytest.fixture
def scheduler(tmp_path: Path, hil_vendor_key: PrivateKey) -> Iterator[WardScheduler]:
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(1.0), hil_vendor_key)
    sched.start()
    try:
        yield sched
    finally:
        sched.stop()


def _start_rollout(sched: WardScheduler, release: Release, key: PrivateKey) -> int:
    rel = releases.import_release(sched.sessions(), envelope=release.envelope,
                                  payload=release.payload, sbom=release.sbom, notes="hil",
                                  trust_anchors=[key.public_key()],
                                  actor=sched.team.release_manager)
    now = sched.clock.now()
    r = rollouts.create_rollout(
        sched.sessions(), spec=RolloutCreate(name="hil", release_id=rel.id,
                                             target_groups=["hil-bench"]),
        actor=sched.team.rollout_operator, now=now)
    approve_and_start(sched.sessions, sched.team, r.id, now=now)
    return int(r.id)


def test_update_over_the_network(
    mpy_dut: MicroPythonDut, scheduler: WardScheduler, hil_vendor_key: PrivateKey,
    figures: Callable[[str, object], None],
) -> None:
    base, new = build_release(1, hil_vendor_key), build_release(2, hil_vendor_key)
    token = scheduler.team.tokens[scheduler.team.device_manager.name]
    request = ProvisionRequest(
        app_bundle=base.payload, app_version=1,
        vendor_keys=[keys.public_key_bytes(hil_vendor_key.public_key())],
        vendor_id=uuid.UUID(str(VENDOR_ID)), class_id=uuid.UUID(str(CLASS_ID)),
        scheduler_url=scheduler.url,
        scheduler_keys=[keys.public_key_bytes(scheduler.signing_key.public_key())],
        device_id="hil-net-1", groups=["hil-bench"], force=True,
    )
    result = provision(mpy_dut, request, scheduler=SchedulerClient(scheduler.url, token))
    assert result.credential is not None
    rollout_id = _start_rollout(scheduler, new, hil_vendor_key)

    mpy_dut.app_log_timeout_s = 60.0
    # Boot 1: the agent polls, downloads, stages and asks for the reset that installs.
    mpy_dut.hard_reset(log_until=b"SUTURE-BOOT RESET")
    log = mpy_dut.link.boot_log
    assert '"ev": "staged"' in log
    assert '"reason": "install"' in log
    # Boot 2: the loader installs; the new version runs on trial and the agent confirms it.
    # The test watches the running agent through the status protocol, without stopping it.
    watcher = mpy_dut.reset_and_watch(log_until=b'"ev": "confirmed"')
    assert mpy_dut.boot_state == "TRIAL"
    live = watcher.request(["state", "versions", "identity", "agent"], timeout_s=30)
    assert (live["state"], live["installed_version"]) == ("CONFIRMED", 2)
    assert live["device_id"] == "hil-net-1"
    assert isinstance(live["agent"]["phase"], str)  # what the agent is doing meanwhile
    mpy_dut.take_repl()
    status = mpy_dut.status()
    assert (status["state"], status["installed_version"]) == ("CONFIRMED", 2)
    assert status["backup_version"] == 1
    record = SchedulerClient(scheduler.url, token).device("hil-net-1")
    assert record["installed"] == {"app": 2}
    figures("network update payload bytes", len(new.payload))
    figures("network update rollout", rollout_id)
