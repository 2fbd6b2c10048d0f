"""End to end on the simulated board: the real agent (MicroPython unix port) against the real
scheduler (uvicorn on loopback), with application #2 requiring loader #3.

The agent reports its loader (``installed["loader"]``, the confirmed loader release kept in
NVM). A device whose loader is #3 gets application #2 and installs it; a device on the factory
loader (0) is scheduled the loader release (schedule component ``loader``) and never the
application. The simulated board has no stage0, so it cannot install a loader image: its
loader refuses the staged payload as no loader image for this board and the agent reports the
step failed. The whole loader update (stage0, trial, confirm) runs on QEMU (tests/qemu); here
the point is that the application is never scheduled to, nor installed on, the old loader.
"""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import select
from suture import keys
from suture.scheduler.models import DeviceEvent
from suture.scheduler.schemas import DeviceCreate, Requirement, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import Component, State
from suture.sim.testing import CLASS_ID, VENDOR_ID, sign_payload
from suture.suit.sbom_build import build_sbom
from suture.ward.clock import ScaledClock
from suture.ward.fleet import SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler


def test_app_needs_loader_on_real_agents(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    base, app2 = build_release(1, vendor), build_release(2, vendor)
    not_an_image = b"loader #3 for a board with stage0\n" * 64
    sched.start()
    fleet: dict[str, SimulatedDevice] = {}
    try:
        for name, loader_seq in (("pump-new", 3), ("pump-old", 0)):
            _, cred = devices.add_device(
                sched.sessions(),
                create=DeviceCreate(id=name, board="sim", vendor_id=str(VENDOR_ID),
                                    class_id=str(CLASS_ID), groups=["ward"],
                                    installed={"app": 1}),
                root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
                now=sched.clock.now())
            dev = SimulatedDevice(name, tmp_path / name, ward_geometry(len(app2.payload)),
                                  vendor, loader_lib, random.Random(3))
            dev.provision(base.payload, 1, scheduler_url=sched.public_url,
                          secret=bytes.fromhex(cred.secret_hex),
                          scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
            if loader_seq:  # as confirm_loader leaves it (loader/core.py)
                r = dev.device.run(["nvm-keep", "loader.seq",
                                    loader_seq.to_bytes(4, "little").hex(), "1"])
                assert r.ok, r.stdout + r.stderr
            dev.target = 2
            fleet[name] = dev
        loader_sbom = build_sbom("loader", "3", {"loader.img": not_an_image})
        loader3 = releases.import_release(
            sched.sessions(), envelope=sign_payload(not_an_image, 3, vendor, component="loader",
                                                    sbom=loader_sbom),
            payload=not_an_image, sbom=loader_sbom, notes=None,
            trust_anchors=[vendor.public_key()],
            actor=sched.team.release_manager)
        app = releases.import_release(
            sched.sessions(), envelope=app2.envelope, payload=app2.payload, sbom=app2.sbom,
            notes=None, trust_anchors=[vendor.public_key()], actor=sched.team.release_manager,
            requires=[Requirement(component="loader", min_version=3)])
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="app 2", release_id=app.id, target_groups=["ward"], waves=["100%"]),
            actor=sched.team.rollout_operator, now=now)
        approve_and_start(sched.sessions, sched.team, ro.id, now=now)
        want = {"pump-new": "succeeded", "pump-old": "failed"}
        sched.run_fleet_until(fleet.values(), lambda: {
            d: e.state for d, e in sched.rollout_entries(ro.id).items()} == want)
        final = sched.rollout_entries(ro.id)
        assert {d: e.state for d, e in final.items()} == want, {
            d: (e.state, e.detail) for d, e in final.items()}
        assert final["pump-old"].step_release_id == loader3.id
        new = devices.get_device(sched.sessions(), device_id="pump-new")[0]
        old = devices.get_device(sched.sessions(), device_id="pump-old")[0]
        assert new.installed == {"app": 2, "loader": 3}  # as the agent reported it
        assert old.installed == {"app": 1}
        with sched.sessions() as s:
            handed = {d: [ev.detail.get("release_id") for ev in s.execute(
                select(DeviceEvent).where(DeviceEvent.device_id == d,
                                          DeviceEvent.kind == "schedule")).scalars()
                          if ev.detail.get("release_id") is not None]
                      for d in fleet}
        assert set(handed["pump-new"]) == {app.id}
        assert set(handed["pump-old"]) == {loader3.id}  # never the application
        # What the flash holds: #2 confirmed on pump-new; pump-old never wrote application #2.
        cur = fleet["pump-new"].board.current_record()
        assert cur is not None
        assert (cur.state, cur.version) == (State.CONFIRMED, 2)
        old_records = fleet["pump-old"].board.read_journal()
        assert all(r.version <= 1 for r in old_records if r.component == Component.APP)
        last = old_records[-1]
        assert (last.component, last.state, last.version) == (Component.LOADER, State.FAILED, 3)
    finally:
        for dev in fleet.values():
            dev.request_stop()
            dev.join(30)
        sched.stop()
