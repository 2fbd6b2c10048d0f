"""End to end on the simulated board: the hospital's manifest over the vendor's, issued by the
real scheduler (uvicorn on loopback) for a rollout, named by the schedule (keys 7-9), fetched
by the real agent (MicroPython unix port) and checked by the loader before the vendor's
manifest runs.

The device in the rollout (its loader processes the hospital's manifest, its NVM requires it:
``trust.hospital``) installs and confirms the release. A device of the same class outside the
rollout, given what a gateway could replay, refuses each before anything is written (its
journal never names the release, its staging flash is unchanged): the rollout's hospital
envelope (not in the device set, HospitalConditionFailed 83), one signed by a key that is not
its scheduler's (HospitalSignatureError 85), and the vendor's envelope alone
(HospitalManifestRequired 84)."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from pathlib import Path

import cbor2
from sqlalchemy import select
from suture import keys
from suture.formats import identity
from suture.scheduler.models import RolloutDevice, RolloutManifest
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.services.blobs import blob_ref, read_blob_bytes
from suture.scheduler.team import approve_and_start
from suture.sim.journal import Component, State
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.suit import HospitalConditions, create_dependent_envelope
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler

STAGE = """
from loader import staging
from loader.errors import LoaderError


class Stream:
    def __init__(self, path):
        self.f = open(path, "rb")

    def readinto(self, buf):
        return self.f.readinto(buf)


try:
    plan = staging.stage(loader, open(args[0], "rb").read(), Stream(args[1]), False,
                         int(args[2]))
    out["staged"] = plan.seq
except LoaderError as e:
    out["refused"] = [type(e).__name__, e.code]
"""


def _device(sched: WardScheduler, tmp_path: Path, name: str, group: str, suit_id: uuid.UUID,
            vendor: keys.PrivateKey, loader_lib: Path, base: bytes) -> SimulatedDevice:
    _, cred = devices.add_device(
        sched.sessions(),
        create=DeviceCreate(id=name, board="sim", vendor_id=str(VENDOR_ID),
                            class_id=str(CLASS_ID), groups=[group], installed={"app": 1},
                            suit_device_id=str(suit_id), hospital_manifest=True),
        root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
        now=sched.clock.now())
    dev = SimulatedDevice(name, tmp_path / name, ward_geometry(len(base) + 4096), vendor,
                          loader_lib, random.Random(7))
    dev.board.identity = dataclasses.replace(dev.board.identity, device_id=suit_id.bytes)
    dev.provision(base, 1, scheduler_url=sched.public_url,
                  secret=bytes.fromhex(cred.secret_hex),
                  scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
    r = dev.device.run(["nvm-put", identity.TRUST_HOSPITAL, "01", "1"])
    assert r.ok, r.stdout + r.stderr
    return dev


def _refusal(dev: SimulatedDevice, envelope: bytes, payload: bytes, now: int) -> object:
    """Stage envelope on dev (as a gateway would hand it over); the refusal, with the proof
    that nothing was written: the external flash and the journal are as they were."""
    before = dev.board.external_image.read_bytes()
    journal = dev.board.read_journal()
    script = dev.board.put_file("stage.py", STAGE.encode())
    env = dev.board.put_file("replayed.suit", envelope)
    pay = dev.board.put_file("replayed.bin", payload)
    r = dev.device.run(["exec", script, env, pay, str(now)])
    assert r.ok, r.stdout + r.stderr
    assert dev.board.external_image.read_bytes() == before
    assert dev.board.read_journal() == journal
    return r.result.get("refused", r.result)


def test_the_hospitals_manifest_is_issued_served_and_checked_before_the_vendors(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    base = build_release(1, vendor)
    new = build_release(2, vendor)
    inside, outside = uuid.uuid4(), uuid.uuid4()
    sched.start()
    fleet: list[SimulatedDevice] = []
    try:
        member = _device(sched, tmp_path, "pump-in", "ward", inside, vendor, loader_lib,
                         base.payload)
        fleet.append(member)
        stranger = _device(sched, tmp_path, "pump-out", "other", outside, vendor, loader_lib,
                           base.payload)
        release = releases.import_release(
            sched.sessions(), envelope=new.envelope, payload=new.payload, sbom=new.sbom,
            notes=None, trust_anchors=[vendor.public_key()], actor=sched.team.release_manager)
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="app 2 hospital manifest", release_id=release.id,
            target_groups=["ward"], waves=["100%"]), actor=sched.team.rollout_operator, now=now)
        approve_and_start(sched.sessions, sched.team, ro.id, now=now)
        member.target = 2
        member.start(sched.clock.device_spec(), Faults())

        def state() -> str:
            with sched.sessions() as s:
                return s.execute(select(RolloutDevice.state).where(
                    RolloutDevice.rollout_id == ro.id)).scalar_one()

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and state() not in ("succeeded", "failed"):
            time.sleep(0.2)
        member.request_stop()
        member.join(30)
        with sched.sessions() as s:
            entry = s.execute(select(RolloutDevice).where(
                RolloutDevice.rollout_id == ro.id)).scalar_one()
            assert entry.state == "succeeded", entry.detail
            row = s.get(RolloutManifest, ro.id)
            assert row is not None
            hospital_env = read_blob_bytes(s, blob_ref(s, row.envelope_digest, "hospital"))
        assert (row.device_count, row.not_before) == (1, now)
        assert devices.get_device(sched.sessions(), device_id="pump-in")[0].installed == {
            "app": 2}
        cur = member.board.current_record()
        assert cur is not None
        assert (cur.state, cur.version) == (State.CONFIRMED, 2)

        # what a gateway could replay to a device of the same class outside the rollout
        later = sched.clock.now()
        assert _refusal(stranger, hospital_env, new.payload, later) == [
            "HospitalConditionFailed", 83]
        impostor = keys.generate_private_key("ES256")
        forged = create_dependent_envelope(
            new.envelope, vendor.public_key(), impostor, sequence_number=2,
            conditions=HospitalConditions(devices=(outside,)))
        assert _refusal(stranger, forged, new.payload, later) == ["HospitalSignatureError", 85]
        assert _refusal(stranger, new.envelope, new.payload, later) == [
            "HospitalManifestRequired", 84]
        assert all(r.version <= 1 for r in stranger.board.read_journal()
                   if r.component == Component.APP)
        # the envelope served is the hospital's: the vendor's integrated, unchanged
        assert cbor2.loads(hospital_env).value["#vendor.suit"] == new.envelope
    finally:
        for dev in fleet:
            dev.request_stop()
            dev.join(30)
        sched.stop()
