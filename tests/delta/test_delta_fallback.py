"""The fallback to the full payload after a failed delta, end to end on the simulated board
with the real agent against the real scheduler: the device on release 1 is served a delta of
release 2 whose patch is corrupt (signed as it is: only applying it shows the damage); its
apply fails, the device reports the failure, the scheduler records it (migration 0012) and
signs a schedule with the release's full payload, which the device installs and confirms. A
delta that failed on a device is never served to it again."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

from delta_helpers import sign_delta
from sqlalchemy import select
from suture import keys
from suture.delta import make_delta
from suture.scheduler.models import DeltaFailure, Device, DeviceEvent, Release, RolloutDevice
from suture.scheduler.schedule_doc import K_PAYLOAD_URI, verify_schedule
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import deltas, devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import State
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

DELTA_FAILURES = (31, 35)  # DigestError (the target does not verify), DeltaError (the patch)


def test_a_failed_delta_falls_back_to_the_full_payload(tmp_path: Path,
                                                        loader_lib: Path) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    v1, v2 = build_release(1, vendor, filler=20000), build_release(2, vendor, filler=20000)
    good = make_delta(v1.payload, v2.payload, segment_size=8192)
    bad = bytearray(good.patch)
    bad[len(bad) // 2] ^= 0x40  # inside a segment's compressed stream
    corrupt = dataclasses.replace(good, patch=bytes(bad))
    sched.start()
    dev = None
    try:
        anchors = [vendor.public_key()]
        team = sched.team
        ids = []
        for v in (v1, v2):
            ids.append(releases.import_release(
                sched.sessions(), envelope=v.envelope, payload=v.payload, sbom=v.sbom,
                notes=None, trust_anchors=anchors, actor=team.release_manager).id)
        r2 = ids[1]
        # signed over the corrupt patch: the scheduler cannot tell, the device's apply does
        delta = deltas.import_delta(sched.sessions(), release_id=r2,
                                    envelope=sign_delta(corrupt, 2, vendor),
                                    patch=corrupt.patch, trust_anchors=anchors,
                                    actor=team.release_manager)
        _, cred = devices.add_device(
            sched.sessions(),
            create=DeviceCreate(id="pump", board="sim", vendor_id=str(VENDOR_ID),
                                class_id=str(CLASS_ID), groups=["ward"], installed={"app": 1}),
            root_secret=bytes.fromhex(sched.root_secret), actor=team.device_manager,
            now=sched.clock.now())
        size = len(v2.payload) + len(corrupt.patch) + 8192
        dev = SimulatedDevice("pump", tmp_path / "pump", ward_geometry(size), vendor,
                              loader_lib, random.Random(18))
        dev.provision(v1.payload, 1, scheduler_url=sched.public_url,
                      secret=bytes.fromhex(cred.secret_hex),
                      scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
        dev.target = 2
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="app 2", release_id=r2, target_groups=["ward"], waves=["100%"]),
            actor=team.rollout_operator, now=now)
        approve_and_start(sched.sessions, team, ro.id, now=now)
        dev.start(sched.clock.device_spec(), Faults())
        served: list[str] = []
        state = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and state != "succeeded":
            with sched.sessions() as s:
                doc = s.execute(select(Device.schedule_document).where(
                    Device.id == "pump")).scalar_one()
                entry = s.execute(select(RolloutDevice).where(
                    RolloutDevice.rollout_id == ro.id)).scalar_one()
                state = entry.state
            if doc is not None:
                uri = verify_schedule(doc, sched.signing_key.public_key()).get(K_PAYLOAD_URI)
                if uri and (not served or served[-1] != uri):
                    served.append(str(uri))
            time.sleep(0.2)
        assert state == "succeeded", (state, entry.detail, dev.view.errors, [
            (r.state.name, r.progress, r.size) for r in dev.journal()[-4:]])
        # the delta first, then the full payload of the same release. The schedule naming the
        # delta may come and go between two looks of this loop on a busy machine (it did
        # once in a whole run of the suite): the delta's recorded failure below shows that
        # it was served.
        delta_uri = f"/releases/{r2}/deltas/{delta.id}/payload"
        assert served[-1].endswith(f"/releases/{r2}/payload"), served
        assert len(served) <= 2, served
        assert len(served) == 1 or served[0].endswith(delta_uri), served
        # the apply's failure is reported by the download itself, not left to a failed cycle
        assert not [e for e in dev.view.errors if e.startswith("cycle: DeltaError")], \
            dev.view.errors
        records = [(r.state, r.version, r.progress) for r in dev.journal()]
        assert any(st == State.FAILED and v == 2 and code in DELTA_FAILURES
                   for st, v, code in records), records
        cur = dev.board.current_record()
        assert cur is not None
        assert (cur.state, cur.version) == (State.CONFIRMED, 2)
        with sched.sessions() as s:
            failure = s.get(DeltaFailure, ("pump", r2))
            assert failure is not None
            assert (failure.delta_id, failure.error_code in DELTA_FAILURES) == (delta.id, True)
            reported = s.execute(select(DeviceEvent.detail).where(
                DeviceEvent.device_id == "pump", DeviceEvent.kind == "report")).scalars().all()
            assert any("the full payload next" in str(d.get("entry", "")) or
                       d.get("state") == "failed" for d in reported)
            # never the delta again for this device and release, even from release 1
            device = s.get(Device, "pump")
            release = s.get(Release, r2)
            assert device is not None
            assert release is not None
            device.installed = {"app": 1}
            assert deltas.delta_for(s, device, release) is None
            s.rollback()
    finally:
        if dev is not None:
            dev.request_stop()
            dev.join(30)
        sched.stop()
