"""The update agent on the real firmware, through the device link: QEMU's second UART carries
the agent's requests to the gateway, which makes them to a real scheduler (SQLite). A rollout of
application v2 reaches the device, which downloads, stages, installs through the loader at a
reset, passes its health check on trial and confirms."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from suture.gateway import LinkGateway
from suture.scheduler.schemas import RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.ward.clock import ScaledClock
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

from .conftest import Firmware, linked_device

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
CONFIRMED = b'"ev": "confirmed"'


def test_agent_updates_through_the_gateway(firmware: Firmware, tmp_path: Path) -> None:
    vendor = firmware.vendor_key
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(1.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    base = build_release(1, vendor)
    target = build_release(2, vendor)
    sched.start()
    try:
        with LinkGateway(sched.public_url) as gateway:
            release = releases.import_release(
                sched.sessions(), envelope=target.envelope, payload=target.payload,
                sbom=target.sbom,
                notes="v2", trust_anchors=[vendor.public_key()],
                actor=sched.team.release_manager)
            dev = linked_device(firmware, sched, gateway, tmp_path / "dev", "qemu-bed-1",
                                base.payload)
            now = sched.clock.now()
            r = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
                name="qemu", release_id=release.id, target_groups=["qemu"], waves=["100%"],
                error_threshold=0.5, error_min_sample=1, on_error="pause"),
                actor=sched.team.rollout_operator, now=now)
            approve_and_start(sched.sessions, sched.team, r.id, now=now)

            consoles = []
            deadline = time.monotonic() + 600
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "no confirmation within 600 s:\n" + consoles[-1][-3000:]
                boot = dev.power_on(until=CONFIRMED, timeout_s=left)
                consoles.append(boot.console)
                if CONFIRMED in boot.console.encode():
                    break
                assert boot.stopped, boot.console[-2000:]
            dev.power_off()
            text = "\n".join(consoles)
            assert "suture: reset" in text  # the agent reset into the loader to install
            assert "APP version 2 running" in consoles[-1]
            assert gateway.stats.requests > 3
            assert gateway.stats.refused == 0
            assert gateway.stats.bytes_to_devices >= len(target.payload)
            device, _ = devices.get_device(sched.sessions(), device_id="qemu-bed-1")
            assert device.installed == {"app": 2}
    finally:
        sched.stop()
