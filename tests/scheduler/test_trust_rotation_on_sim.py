"""End to end on the simulated board: the real agent (MicroPython unix port) against the real
scheduler (uvicorn on loopback), with the device key registered at enrolment.

The scheduler publishes a rotation of its schedule key (version 1: the old key and a new one,
signed by the old). The device's schedule carries it (key 22), the device applies it, and its
next report, signed with the device key, says it holds version 1; the scheduler then stops
carrying it. A rotation not signed by the current anchors, and one that is not above the
published version, are refused and change nothing. Every report the scheduler took from the
device verified against the device's key (a keyed device's unsigned report is refused)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from suture import cose, keys
from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
from suture.scheduler.errors import ConflictError, InvalidInputError
from suture.scheduler.models import Device, DeviceEvent
from suture.scheduler.schedule_doc import K_TRUST_UPDATE
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices, trust_rotations
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler


def _trust_of(sched: WardScheduler, device_id: str) -> tuple[dict[str, int], bytes | None]:
    with sched.sessions() as s:
        d = s.get(Device, device_id)
        assert d is not None
        return dict(d.trust_versions or {}), d.schedule_document


def test_a_published_rotation_reaches_the_device(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor = keys.generate_private_key("ES256")
    sched = WardScheduler(tmp_path / "scheduler", ScaledClock(20.0), vendor,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    base = build_release(1, vendor)
    device_key = ec.generate_private_key(ec.SECP256R1())
    sched.start()
    dev = None
    try:
        _, cred = devices.add_device(
            sched.sessions(),
            create=DeviceCreate(id="pump-1", board="sim", vendor_id=str(VENDOR_ID),
                                class_id=str(CLASS_ID), groups=["ward"], installed={"app": 1},
                                public_key=sec1_point(device_key).hex()),
            root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
            now=sched.clock.now())
        dev = SimulatedDevice("pump-1", tmp_path / "pump-1", ward_geometry(len(base.payload)),
                              vendor, loader_lib, random.Random(5))
        dev.provision(base.payload, 1, scheduler_url=sched.public_url,
                      secret=bytes.fromhex(cred.secret_hex),
                      scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
        put = dev.device.run(["nvm-put", "id.key", device_key.private_numbers()
                              .private_value.to_bytes(32, "big").hex(), "1"])
        assert put.ok, put.stdout + put.stderr

        baseline = trust_rotations.baseline(sched.signing_key.public_key(),
                                            [vendor.public_key()])
        new_key = ec.generate_private_key(ec.SECP256R1())
        intruder = ec.generate_private_key(ec.SECP256R1())
        forged = sign_trust_update(TrustUpdate("scheduler", 1, (sec1_point(intruder),)),
                                   intruder)
        with pytest.raises(InvalidInputError):
            trust_rotations.publish(sched.sessions(), document=forged, baseline=baseline,
                                    actor=sched.team.release_manager, now=sched.clock.now())
        assert trust_rotations.list_rotations(sched.sessions()) == []
        rotation = sign_trust_update(TrustUpdate("scheduler", 1, (
            sec1_point(sched.signing_key), sec1_point(new_key))), sched.signing_key)
        trust_rotations.publish(sched.sessions(), document=rotation, baseline=baseline,
                                actor=sched.team.release_manager, now=sched.clock.now())
        again = sign_trust_update(TrustUpdate("scheduler", 1, (sec1_point(new_key),)), new_key)
        with pytest.raises(ConflictError):
            trust_rotations.publish(sched.sessions(), document=again, baseline=baseline,
                                    actor=sched.team.release_manager, now=sched.clock.now())
        assert [r.version for r in trust_rotations.list_rotations(sched.sessions())] == [1]
        status = trust_rotations.device_trust(sched.sessions())
        assert [(s.device_id, s.pending) for s in status] == [("pump-1", "scheduler v1")]

        dev.start(sched.clock.device_spec(), Faults())
        carried = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held, document = _trust_of(sched, "pump-1")
            if document is not None:
                m = cbor2.loads(cose.verify1(document, [sched.signing_key.public_key()]))
                carried = carried or m.get(K_TRUST_UPDATE) == rotation
                if held.get("scheduler") == 1 and K_TRUST_UPDATE not in m:
                    break
            time.sleep(0.2)
        dev.request_stop()
        dev.join(30)
        held, document = _trust_of(sched, "pump-1")
        assert carried
        assert held == {"vendor": 0, "scheduler": 1}
        assert document is not None
        final = cbor2.loads(cose.verify1(document, [sched.signing_key.public_key()]))
        assert K_TRUST_UPDATE not in final  # it holds the rotation: no longer carried
        status = trust_rotations.device_trust(sched.sessions())
        assert [(s.device_id, s.pending) for s in status] == [("pump-1", None)]
        with sched.sessions() as s:
            reports = s.execute(select(DeviceEvent).where(
                DeviceEvent.device_id == "pump-1", DeviceEvent.kind == "report")).scalars().all()
        assert reports  # each taken only with the device key's signature (the device is keyed)
        nvm = dev.device.run(["report"]).report()["nvm"]
        assert isinstance(nvm, dict)
        assert "trust.scheduler" in nvm
    finally:
        if dev is not None:
            dev.request_stop()
            dev.join(30)
        sched.stop()
