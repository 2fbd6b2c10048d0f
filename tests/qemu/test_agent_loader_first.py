"""A loader update and an application update end to end on the real firmware, against the real
scheduler through the device link: application #2 requires loader #5, so the scheduler sends
the loader release first; the agent stages it, stage0 installs it at the reset, the new loader
checks its health and confirms itself, the agent reports loader #5, and only then does the
device get application #2, which it installs and confirms."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from suture.gateway import LinkGateway
from suture.qemu import QemuError
from suture.scheduler.schemas import Requirement, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.ward.clock import ScaledClock
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

from .conftest import Firmware, linked_device
from .test_firmware import _loader_release, _loader_sbom, _slot_version

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
CONFIRMED = b'"ev": "confirmed"'


def test_the_loader_goes_first_then_the_application(firmware: Firmware, tmp_path: Path) -> None:
    vendor = firmware.vendor_key
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(1.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    base = build_release(1, vendor)
    app2 = build_release(2, vendor)
    loader_env, loader_image = _loader_release(firmware, 5, 2)
    sched.start()
    try:
        with LinkGateway(sched.public_url) as gateway:
            s = sched.sessions()
            releases.import_release(s, envelope=loader_env, payload=loader_image,
                                    sbom=_loader_sbom(loader_image, 2),
                                    notes="loader 1.2.0", trust_anchors=[vendor.public_key()],
                                    actor=sched.team.release_manager)
            app_release = releases.import_release(
                s, envelope=app2.envelope, payload=app2.payload, sbom=app2.sbom, notes="app 2",
                trust_anchors=[vendor.public_key()], actor=sched.team.release_manager,
                requires=[Requirement(component="loader", min_version=5)])
            dev = linked_device(firmware, sched, gateway, tmp_path / "dev", "qemu-bed-2",
                                base.payload)
            now = sched.clock.now()
            r = rollouts.create_rollout(s, spec=RolloutCreate(
                name="app2", release_id=app_release.id, target_groups=["qemu"], waves=["100%"],
                error_threshold=0.5, error_min_sample=1, on_error="pause"),
                actor=sched.team.rollout_operator, now=now)
            approve_and_start(sched.sessions, sched.team, r.id, now=now)

            console = ""
            seen: list[dict[str, int]] = []
            deadline = time.monotonic() + 900
            while True:
                device, _ = devices.get_device(sched.sessions(), device_id="qemu-bed-2")
                if not seen or seen[-1] != device.installed:
                    seen.append(dict(device.installed))
                if device.installed == {"app": 2, "loader": 5}:
                    break
                left = deadline - time.monotonic()
                assert left > 0, f"{seen}\n{console[-3000:]}"
                try:
                    boot = (dev.power_on(until=CONFIRMED, timeout_s=min(left, 60))
                            if dev.proc is None else
                            dev.watch(until=CONFIRMED, timeout_s=min(left, 60)))
                    console += boot.console
                except QemuError:
                    continue  # nothing confirmed in this minute: look at the scheduler again
            dev.power_off()
            # the loader first (app still 1), then the application
            assert {"app": 1, "loader": 5} in seen, seen
            assert seen.index({"app": 1, "loader": 5}) < seen.index({"app": 2, "loader": 5})
            assert "stage0: installing the staged loader" in console
            assert "suture: loader confirmed (release 5)" in console
            assert _slot_version(dev) == (1, 2, 0)
            assert gateway.stats.refused == 0
    finally:
        sched.stop()
