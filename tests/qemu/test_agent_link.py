"""The update agent on the real firmware, through the device link: QEMU's second UART carries
the agent's requests to the gateway, which makes them to a real scheduler (SQLite). A rollout of
application v2 reaches the device, which downloads, stages, installs through the loader at a
reset, passes its health check on trial and confirms."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from suture import keys
from suture.boards import load_board
from suture.formats import identity
from suture.gateway import LinkGateway
from suture.qemu import QemuDevice
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

from .conftest import BOARD, Firmware

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
            _, cred = devices.add_device(
                sched.sessions(),
                create=DeviceCreate(id="qemu-bed-1", board=BOARD, vendor_id=str(VENDOR_ID),
                                    class_id=str(CLASS_ID), ward="qemu", groups=["qemu"],
                                    installed={"app": 1}),
                root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
                now=sched.clock.now())
            dev = QemuDevice(load_board(BOARD), firmware.stage0_elf, tmp_path / "dev",
                             link_port=gateway.port)
            dev.factory_flash(firmware.build.loader_image.read_bytes(),
                              firmware.loader_key.public_key())
            dev.power_on()
            dev.provision(base.payload, 1)
            dev.enrol(identity.enrolment(
                device_id="qemu-bed-1", credential=bytes.fromhex(cred.secret_hex),
                scheduler_url=sched.public_url,
                scheduler_keys=[keys.public_key_bytes(sched.signing_key.public_key())]))
            dev.power_off()
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
