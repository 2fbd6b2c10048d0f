"""The vendor-run scheduler, end to end on loopback: the real agent (MicroPython unix port) on
the simulated board, the real scheduler and the vendor's services (uvicorn). The vendor grants
the rollout, the scheduler issues the device a biscuit for its release and window, and the
device downloads envelope and payload from the vendor's ``/direct/`` path with it (never from
the scheduler), installs and confirms. The same biscuit presented for another device or
release is refused."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from suture import keys
from suture.scheduler.models import DeviceBiscuit, RolloutDevice
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, releases, rollouts, vendor_grants, vendor_releases
from suture.scheduler.team import approve_and_start
from suture.scheduler.vendor_authority import GnapAuthority
from suture.sim.journal import State
from suture.sim.testing import CLASS_ID, VENDOR_ID
from suture.vendor_services import biscuits
from suture.vendor_services.app import create_app
from suture.vendor_services.clock import Clock
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings
from suture.ward.clock import ScaledClock
from suture.ward.fleet import Faults, SimulatedDevice, ward_geometry
from suture.ward.release import build_release
from suture.ward.server import SchedulerSettings, WardScheduler, free_socket


@contextlib.contextmanager
def vendor_serving(settings: VendorSettings, port: int, clock: Clock) -> Iterator[FastAPI]:
    """The vendor's services under uvicorn on 127.0.0.1:``port``, on ``clock``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_device_downloads_from_the_vendor_with_a_biscuit(
        tmp_path: Path, loader_lib: Path, ward_database: str | None) -> None:
    vendor_key = keys.generate_private_key("ES256")
    clock = ScaledClock(20.0)
    sched = WardScheduler(tmp_path / "scheduler", clock, vendor_key,
                          SchedulerSettings(poll_interval_s=10, poll_jitter_s=1),
                          database_url=ward_database)
    with free_socket() as s:
        port = s.getsockname()[1]
    vendor_url = f"http://127.0.0.1:{port}"
    settings = VendorSettings(data_dir=tmp_path / "vendor", public_url=vendor_url)
    vendor_clock: Clock = clock.now_f
    client_key = SigningKey.generate("EdDSA")
    settings.data_dir.mkdir(parents=True)
    Registry.load(settings.registry_path).add_client(
        RegisteredClient("st-mary", client_key.jwk(), releases=["pump-*"]))
    biscuits.generate_root_key(settings.biscuit_root_path)
    base, app2 = build_release(1, vendor_key), build_release(2, vendor_key)
    ReleaseStore(settings.releases_dir).publish(
        "pump-2", envelope=app2.envelope, payload=app2.payload, sbom=app2.sbom or b"",
        notes=b"# 2",
        published_at=clock.now(), metadata={"device_classes": ["sim"]})
    sched.start()
    dev: SimulatedDevice | None = None
    try:
        with vendor_serving(settings, port, vendor_clock) as vendor_app, \
                httpx.Client(timeout=30) as http:
            _, cred = devices.add_device(
                sched.sessions(), create=DeviceCreate(
                    id="pump-1", board="sim", vendor_id=str(VENDOR_ID), class_id=str(CLASS_ID),
                    groups=["ward"], installed={"app": 1}),
                root_secret=bytes.fromhex(sched.root_secret), actor=sched.team.device_manager,
                now=clock.now())
            # Mirrored: the same files the vendor serves, with the vendor's metadata.
            rel = releases.import_release(
                sched.sessions(), envelope=app2.envelope, payload=app2.payload,
                sbom=app2.sbom, notes=None, trust_anchors=[vendor_key.public_key()],
                actor=sched.team.release_manager)
            vendor_releases.apply_metadata(
                sched.sessions(), release_id=rel.id, vendor="acme", vendor_release="pump-2",
                metadata={"device_classes": ["sim"], "requires": [], "pass_through": [],
                          "criticality": "routine", "criticality_note": ""},
                recall=None, actor="mirror", now=clock.now())
            ro = rollouts.create_rollout(sched.sessions(), spec=RolloutCreate(
                name="app 2", release_id=rel.id, target_groups=["ward"], waves=["100%"]),
                actor=sched.team.rollout_operator, now=clock.now())
            authority = GnapAuthority(
                "acme", GnapClient(http, grant_endpoint=settings.grant_endpoint, key=client_key,
                                   instance_id="st-mary", clock=vendor_clock),
                settings.releases_url, f"{vendor_url}/direct/",
                biscuits.load_root_key(settings.biscuit_root_path))
            verdict = vendor_grants.ask_vendor(sched.sessions(), rollout_id=ro.id,
                                               authority=authority,
                                               actor=sched.team.rollout_operator,
                                               now=clock.now())
            assert verdict.allows_start, verdict
            approve_and_start(sched.sessions, sched.team, ro.id, now=clock.now())
            with sched.sessions() as s:
                token = s.get(DeviceBiscuit,  # type: ignore[union-attr]
                              (ro.id, "pump-1", rel.id)).token
            # The biscuit opens this device's release only.
            direct = f"{vendor_url}/direct"
            bearer = {"Authorization": f"Bearer {token}"}
            assert http.get(f"{direct}/pump-1/releases/pump-2/envelope",
                            headers=bearer).content == app2.envelope
            for other in (f"{direct}/pump-9/releases/pump-2/payload",
                          f"{direct}/pump-1/releases/pump-3/payload"):
                refused = http.get(other, headers=bearer)
                assert refused.status_code == 403, refused.text
            served_before = vendor_app.state.repository.served
            dev = SimulatedDevice("pump-1", tmp_path / "pump-1",
                                  ward_geometry(len(app2.payload)), vendor_key, loader_lib,
                                  random.Random(5))
            dev.provision(base.payload, 1, scheduler_url=sched.public_url,
                          secret=bytes.fromhex(cred.secret_hex),
                          scheduler_key=keys.public_key_bytes(sched.signing_key.public_key()))
            dev.target = 2
            dev.start(clock.device_spec(), Faults())
            deadline = time.monotonic() + 180
            state = ""
            while time.monotonic() < deadline:
                with sched.sessions() as s:
                    state = s.execute(select(RolloutDevice.state).where(
                        RolloutDevice.rollout_id == ro.id)).scalar_one()
                if state in ("succeeded", "failed"):
                    break
                time.sleep(0.2)
            dev.request_stop()
            dev.join(30)
            assert state == "succeeded", dev.board.read_journal()
            cur = dev.board.current_record()
            assert cur is not None
            assert (cur.state, cur.version) == (State.CONFIRMED, 2)
            # Envelope and payload came from the vendor (the scheduler's schedule named it).
            assert vendor_app.state.repository.served >= served_before + 2
    finally:
        if dev is not None:
            dev.request_stop()
            dev.join(30)
        sched.stop()
