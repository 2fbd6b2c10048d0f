"""Deltas through the scheduler: a vendor-signed delta is imported for a release (verified:
signature, the release it is of, the patch, its source release), and the scheduler chooses per
device from the installed release it reports: the delta when it applies, else the full payload.
End to end on the simulated board with the real agent against the real scheduler: the device on
release 1 is scheduled the delta, downloads the patch, applies it and confirms release 2."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import pytest
from delta_helpers import sign_delta
from sqlalchemy import select
from suture import keys
from suture.delta import make_delta
from suture.scheduler.errors import ReleaseVerificationError
from suture.scheduler.models import Device, Release, RolloutDevice
from suture.scheduler.schedule_doc import K_PAYLOAD_URI, Artifact, verify_schedule
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import deltas, devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import State
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler


def test_a_device_is_served_the_delta_and_installs_it(tmp_path: Path, loader_lib: Path) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    v1, v2 = build_release(1, vendor, filler=20000), build_release(2, vendor, filler=20000)
    d = make_delta(v1.payload, v2.payload, segment_size=8192)
    sched.start()
    dev = None
    try:
        anchors = [vendor.public_key()]
        team = sched.team
        r1 = releases.import_release(sched.sessions(), envelope=v1.envelope, payload=v1.payload,
                                     sbom=v1.sbom, notes=None, trust_anchors=anchors,
                                     actor=team.release_manager)
        r2 = releases.import_release(sched.sessions(), envelope=v2.envelope, payload=v2.payload,
                                     sbom=v2.sbom, notes=None, trust_anchors=anchors,
                                     actor=team.release_manager)
        envelope = sign_delta(d, 2, vendor)
        with pytest.raises(ReleaseVerificationError, match="patch"):
            deltas.import_delta(sched.sessions(), release_id=r2.id, envelope=envelope,
                                patch=d.patch[:-1], trust_anchors=anchors,
                                actor=team.release_manager)
        with pytest.raises(ReleaseVerificationError, match="not of release"):
            deltas.import_delta(sched.sessions(), release_id=r1.id, envelope=envelope,
                                patch=d.patch, trust_anchors=anchors,
                                actor=team.release_manager)
        delta = deltas.import_delta(sched.sessions(), release_id=r2.id, envelope=envelope,
                                    patch=d.patch, trust_anchors=anchors,
                                    actor=team.release_manager)
        assert delta.source_release_id == r1.id
        _, cred = devices.add_device(
            sched.sessions(),
            create=DeviceCreate(id="pump", board="sim", vendor_id=str(VENDOR_ID),
                                class_id=str(CLASS_ID), groups=["ward"], installed={"app": 1}),
            root_secret=bytes.fromhex(sched.root_secret), actor=team.device_manager,
            now=sched.clock.now())
        _choice_follows_the_installed_release(sched, r2.id, delta.id)
        size = len(v2.payload) + len(d.patch) + 8192
        dev = SimulatedDevice("pump", tmp_path / "pump", ward_geometry(size), vendor,
                              loader_lib, random.Random(18))
        dev.provision(v1.payload, 1, scheduler_url=sched.public_url,
                      secret=bytes.fromhex(cred.secret_hex),
                      scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
        dev.target = 2
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="app 2", release_id=r2.id, target_groups=["ward"], waves=["100%"]),
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
        assert state == "succeeded", (state, entry.detail, dev.view.errors, dev.view.progress, [
            (r.state.name, r.progress, r.size) for r in dev.journal()[-4:]])
        # the delta while release 1 was installed; once 2 is, no delta applies any more
        assert served, "no artifact was scheduled"
        assert served[0].endswith(f"/releases/{r2.id}/deltas/{delta.id}/payload"), served
        cur = dev.board.current_record()
        assert cur is not None
        assert (cur.state, cur.version) == (State.CONFIRMED, 2)
    finally:
        if dev is not None:
            dev.request_stop()
            dev.join(30)
        sched.stop()


def _choice_follows_the_installed_release(sched: WardScheduler, release_id: int,
                                          delta_id: int) -> None:
    full = Artifact(release_id=release_id, component="app", sequence_number=2,
                    envelope_uri="u/envelope", envelope_digest=b"e", envelope_size=1,
                    payload_uri="u/payload", payload_digest=b"p", payload_size=1)
    with sched.sessions() as s:
        device = s.get(Device, "pump")
        release = s.get(Release, release_id)
        assert device is not None
        assert release is not None
        chosen = deltas.choose(s, device, release, full, "u")
        assert chosen.payload_uri == f"u/deltas/{delta_id}/payload"
        device.installed = {"app": 0}  # another image: the full payload
        assert deltas.choose(s, device, release, full, "u") is full
        device.installed = {}
        assert deltas.choose(s, device, release, full, "u") is full
        s.rollback()


def test_a_delta_from_no_known_release_is_refused(tmp_path: Path) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1))
    v2 = build_release(2, vendor)
    d = make_delta(b"an image no release has" * 100, v2.payload)
    r2 = releases.import_release(sched.sessions(), envelope=v2.envelope, payload=v2.payload,
                                 sbom=v2.sbom, notes=None, trust_anchors=[vendor.public_key()],
                                 actor=sched.team.release_manager)
    other = keys.generate_private_key("ES256")
    with pytest.raises(ReleaseVerificationError, match="does not verify"):
        deltas.import_delta(sched.sessions(), release_id=r2.id, envelope=sign_delta(d, 2, other),
                            patch=d.patch, trust_anchors=[vendor.public_key()],
                            actor=sched.team.release_manager)
    with pytest.raises(ReleaseVerificationError, match="source"):
        deltas.import_delta(sched.sessions(), release_id=r2.id, envelope=sign_delta(d, 2, vendor),
                            patch=d.patch, trust_anchors=[vendor.public_key()],
                            actor=sched.team.release_manager)
    assert tempfile.gettempdir()
