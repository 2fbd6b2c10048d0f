"""End to end on the simulated board: an encrypted release (A128GCM, for the ward's group KEK)
imported into the real scheduler (uvicorn on loopback), rolled out, downloaded as ciphertext by
the real agent (MicroPython unix port) and decrypted by the loader while it is staged.

The device provisioned with the group's KEK (NVM record `enc.keys`) installs and confirms the
release; the device provisioned with another KEK refuses it before anything is written
(KeyUnwrapError, code 80): its rollout entry fails and its application stays #1. The scheduler
stores and serves only the ciphertext."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from suture import keys
from suture.bundle import build_bundle
from suture.cose.mac0 import SymmetricKey
from suture.formats import identity
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts
from suture.scheduler.team import approve_and_start
from suture.sim.journal import Component, State
from suture.sim.testing import CLASS_ID, VENDOR_ID, encrypt_payload
from suture.suit.sbom_build import build_sbom
from suture.ward.clock import ScaledClock
from suture.ward.fleet import SimulatedDevice, ward_geometry
from suture.ward.release import application_files, build_release
from suture.ward.server import SchedulerSettings, WardScheduler

GROUP_KEK = bytes(range(16))
OTHER_KEK = bytes(range(16, 32))


def test_an_encrypted_release_installs_only_where_the_kek_is(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    base = build_release(1, vendor)
    files = application_files(2)
    plaintext = build_bundle(files)
    sbom = build_sbom("example-application", "2", files)
    envelope, ciphertext = encrypt_payload(plaintext, 2, vendor,
                                           [SymmetricKey(GROUP_KEK, b"ward-3")], sbom=sbom)
    sched.start()
    fleet: dict[str, SimulatedDevice] = {}
    try:
        for name, kek in (("pump-kek", GROUP_KEK), ("pump-other", OTHER_KEK)):
            _, cred = devices.add_device(
                sched.sessions(),
                create=DeviceCreate(id=name, board="sim", vendor_id=str(VENDOR_ID),
                                    class_id=str(CLASS_ID), groups=["ward"],
                                    installed={"app": 1}),
                root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
                now=sched.clock.now())
            dev = SimulatedDevice(name, tmp_path / name, ward_geometry(len(plaintext)),
                                  vendor, loader_lib, random.Random(5))
            dev.provision(base.payload, 1, scheduler_url=sched.public_url,
                          secret=bytes.fromhex(cred.secret_hex),
                          scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
            record = identity.encryption_keys([(identity.ENC_KIND_KEK, b"ward-3", kek)])
            r = dev.device.run(["nvm-put", identity.ENC_KEYS, record.hex(), "1"])
            assert r.ok, r.stdout + r.stderr
            dev.target = 2
            fleet[name] = dev
        release = releases.import_release(
            sched.sessions(), envelope=envelope, payload=ciphertext, sbom=sbom, notes=None,
            trust_anchors=[vendor.public_key()], actor=sched.team.release_manager)
        assert release.payload_digest == hashlib.sha256(ciphertext).hexdigest()
        assert release.payload_size == len(ciphertext) == len(plaintext) + 16
        now = sched.clock.now()
        ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
            name="app 2 encrypted", release_id=release.id, target_groups=["ward"],
            waves=["100%"]), actor=sched.team.rollout_operator, now=now)
        approve_and_start(sched.sessions, sched.team, ro.id, now=now)
        want = {"pump-kek": "succeeded", "pump-other": "failed"}
        sched.run_fleet_until(fleet.values(), lambda: {
            d: e.state for d, e in sched.rollout_entries(ro.id).items()} == want)
        final = sched.rollout_entries(ro.id)
        assert {d: e.state for d, e in final.items()} == want, {
            d: (e.state, e.detail) for d, e in final.items()}
        assert "80" in str(final["pump-other"].detail), final["pump-other"].detail
        assert devices.get_device(sched.sessions(), device_id="pump-kek")[0].installed == {
            "app": 2}
        assert devices.get_device(sched.sessions(), device_id="pump-other")[0].installed == {
            "app": 1}
        good = fleet["pump-kek"].board
        cur = good.current_record()
        assert cur is not None
        assert (cur.state, cur.version, cur.digest) == (
            State.CONFIRMED, 2, hashlib.sha256(plaintext).digest())
        # the refusal opened no record: the journal of pump-other never names release #2
        assert all(r.version <= 1 for r in fleet["pump-other"].board.read_journal()
                   if r.component == Component.APP)
    finally:
        for dev in fleet.values():
            dev.request_stop()
            dev.join(30)
        sched.stop()
