"""End to end on the simulated board: the real agent (MicroPython unix port) against the real
scheduler (uvicorn on loopback): one device with its key registered at enrolment, one without.

Release #2's payload is served with one byte changed: the device stages it, the digest does not
match, and the SUIT report it sends with its `failed` report names the manifest's image-match
condition (its section and byte offset) as the failing command, reason condition-failed, code
31. Release #3 then installs and is confirmed: its SUIT report succeeded, with the conditions
that held and the installed digest. Every SUIT report the scheduler stored verified: the keyed
device's a COSE_Sign1 under its key, the other's a COSE_Mac0 under the report MAC key derived
from its secret; the operator API shows them."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from suture import keys
from suture.cose.mac0 import SymmetricKey
from suture.formats.trust_store import sec1_point
from suture.scheduler.credentials import suit_report_key
from suture.scheduler.models import BlobChunk, RolloutDevice, SuitReportRecord
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts, suit_reports
from suture.scheduler.team import approve_and_start
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.suit import codepoints as cp
from suture.suit.report import verify_report
from suture.ward.clock import ScaledClock
from suture.ward.fleet import SimulatedDevice, ward_geometry
from suture.ward.release import Release, build_release
from suture.ward.server import SchedulerSettings, WardScheduler


def _manifest(envelope: bytes) -> tuple[dict[int, Any], str]:
    """The manifest map of an envelope and its SHA-256 (hex) as its wrapper gives it."""
    env = cbor2.loads(envelope)
    env = env.value if isinstance(env, cbor2.CBORTag) else env
    digest = cbor2.loads(cbor2.loads(env[2])[0])[1]
    return cbor2.loads(env[3]), digest.hex()


def _commands(sequence: bytes) -> list[tuple[int, Any]]:
    """(byte offset, code) of each command of a command sequence."""
    head = 1 if sequence[0] & 0x1F < 24 else 2
    stream = io.BytesIO(sequence[head:])
    decoder = cbor2.CBORDecoder(stream)
    out = []
    while stream.tell() < len(sequence) - head:
        at = head + stream.tell()
        out.append((at, decoder.decode()))
        decoder.decode()
    return out


def _image_matches(manifest: dict[int, Any]) -> set[tuple[str, int]]:
    """(section name, offset) of every image-match condition of the manifest."""
    found = set()
    for key in (cp.MANIFEST_VALIDATE, cp.MANIFEST_INSTALL, cp.MANIFEST_PAYLOAD_FETCH):
        sequence = manifest.get(key)
        if isinstance(sequence, bytes):
            found |= {(cp.MANIFEST_KEYS[key], at) for at, code in _commands(sequence)
                      if code == cp.CONDITION_IMAGE_MATCH}
    return found


def _roll_out(sched: WardScheduler, release: Release, vendor: keys.PrivateKey, group: str,
              *, corrupt: bool) -> int:
    """Import release and start its rollout to group; corrupt: serve its payload with one
    byte changed (the device's digest check must fail). Returns the rollout's id."""
    imported = releases.import_release(
        sched.sessions(), envelope=release.envelope, payload=release.payload,
        sbom=release.sbom, notes=None, trust_anchors=[vendor.public_key()],
        actor=sched.team.release_manager)
    if corrupt:
        with sched.sessions() as s, s.begin():
            chunk = s.get(BlobChunk, (hashlib.sha256(release.payload).hexdigest(), 0))
            assert chunk is not None
            data = bytearray(chunk.data)
            data[len(data) // 2] ^= 0x01
            chunk.data = bytes(data)
    now = sched.clock.now()
    ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
        name=f"app {release.version}", release_id=imported.id, target_groups=[group],
        waves=["100%"]), actor=sched.team.rollout_operator, now=now)
    approve_and_start(sched.sessions, sched.team, ro.id, now=now)
    return ro.id


def _entries(sched: WardScheduler) -> dict[str, str]:
    with sched.sessions() as s:
        return {e.device_id: e.state for e in s.execute(select(RolloutDevice)).scalars()}


def _stored(sched: WardScheduler) -> dict[str, int]:
    with sched.sessions() as s:
        out: dict[str, int] = {}
        for device_id in s.execute(select(SuitReportRecord.device_id)).scalars():
            out[device_id] = out.get(device_id, 0) + 1
        return out


def _enrol(sched: WardScheduler, name: str, group: str, size: int, vendor: keys.PrivateKey,
           loader_lib: Path, base: Release, tmp_path: Path, *, keyed: bool
           ) -> tuple[SimulatedDevice, ec.EllipticCurvePublicKey | SymmetricKey]:
    """A provisioned device and what its SUIT reports verify with: its public key (keyed), or
    else its report MAC key."""
    key = ec.generate_private_key(ec.SECP256R1())
    _, cred = devices.add_device(
        sched.sessions(),
        create=DeviceCreate(id=name, board="sim", vendor_id=str(VENDOR_ID),
                            class_id=str(CLASS_ID), groups=[group], installed={"app": 1},
                            public_key=sec1_point(key).hex() if keyed else None),
        root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
        now=sched.clock.now())
    dev = SimulatedDevice(name, tmp_path / name, ward_geometry(size), vendor, loader_lib,
                          random.Random(7))
    dev.provision(base.payload, 1, scheduler_url=sched.public_url,
                  secret=bytes.fromhex(cred.secret_hex),
                  scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
    if not keyed:
        return dev, SymmetricKey(suit_report_key(bytes.fromhex(cred.secret_hex), name))
    put = dev.device.run(["nvm-put", "id.key", key.private_numbers()
                          .private_value.to_bytes(32, "big").hex(), "1"])
    assert put.ok, put.stdout + put.stderr
    return dev, key.public_key()


def test_suit_reports_name_the_failing_condition_and_the_installed_digest(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    base, app2, app3 = (build_release(n, vendor) for n in (1, 2, 3))
    sched.start()
    fleet: dict[str, SimulatedDevice] = {}
    try:
        size = max(len(app2.payload), len(app3.payload))
        fleet["pump-bad"], bad_key = _enrol(sched, "pump-bad", "ward-a", size, vendor,
                                            loader_lib, base, tmp_path, keyed=True)
        fleet["pump-ok"], ok_key = _enrol(sched, "pump-ok", "ward-b", size, vendor, loader_lib,
                                          base, tmp_path, keyed=False)
        _roll_out(sched, app2, vendor, "ward-a", corrupt=True)
        _roll_out(sched, app3, vendor, "ward-b", corrupt=False)
        fleet["pump-bad"].target, fleet["pump-ok"].target = 2, 3
        want = {"pump-bad": "failed", "pump-ok": "succeeded"}
        sched.run_fleet_until(fleet.values(), lambda: _entries(sched) == want and _stored(
            sched) == {"pump-bad": 1, "pump-ok": 1})
        assert _entries(sched) == want
        assert _stored(sched) == {"pump-bad": 1, "pump-ok": 1}

        (failed,) = suit_reports.list_suit_reports(sched.sessions(), device_id="pump-bad")
        manifest2, digest2 = _manifest(app2.envelope)
        assert (failed["kind"], failed["succeeded"], failed["result_code"]) == (
            "COSE_Sign1", False, 31)
        assert failed["manifest_digest"] == digest2
        result = failed["result"]
        assert result["reason"] == "condition-failed"
        record = result["record"]
        assert record["properties"] == {"command": "condition-image-match"}
        assert (record["section"], record["offset"]) in _image_matches(manifest2)
        held = {r["properties"]["command"] for r in failed["records"]}
        assert {"condition-vendor-identifier", "condition-class-identifier"} <= held
        assert "condition-image-match" not in held
        assert failed["device"]["state"] == "failed"

        (ok,) = suit_reports.list_suit_reports(sched.sessions(), device_id="pump-ok")
        _, digest3 = _manifest(app3.envelope)
        assert (ok["kind"], ok["succeeded"], ok["result"]) == ("COSE_Mac0", True, None)
        assert ok["manifest_digest"] == digest3
        assert ok["device"]["state"] == "confirmed"
        (claim,) = [c for c in ok["claims"] if c["component"] == ["app"]]
        assert claim["properties"] == {"suture-sequence-number": 3,
                                       "image-digest": hashlib.sha256(app3.payload).hexdigest()}
        assert "condition-image-match" in {r["properties"]["command"] for r in ok["records"]}
        # what was stored is what each device signed or MACed, with its own key
        with sched.sessions() as s:
            rows = s.execute(select(SuitReportRecord)).scalars().all()
            for row in rows:
                key = bad_key if row.device_id == "pump-bad" else ok_key
                verify_report(row.body, [key])
    finally:
        for dev in fleet.values():
            dev.request_stop()
            dev.join(30)
        sched.stop()
