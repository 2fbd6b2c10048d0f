"""The vendor in the scheduler's loop: the service asks the vendor about its grants on a timer,
so a vendor's recall pauses a running rollout without anyone running a command; and in the
direct-download mode each device holds a biscuit for every release on its path (a release to
pass through, then the rollout's), each good for that device and release only."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sched_world import SimDevice, World
from sqlalchemy import Engine, select
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.models import AuditRecord, DeviceBiscuit, Release
from suture.scheduler.schedule_doc import K_GRANT, Grant
from suture.scheduler.services import vendor_grants
from suture.scheduler.vendor_watch import ACTOR
from vendor_loop import VENDOR_URL, Vendor, add_devices, make_vendor


@pytest.fixture
def vendor(world: World, tmp_path: Path) -> Iterator[Vendor]:
    yield from make_vendor(world, tmp_path)


def _wait_for(predicate: object, timeout_s: float = 60.0) -> bool:
    """Poll ``predicate`` (a callable) until it holds; a loaded machine gets time."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_the_service_pauses_a_recalled_rollout_on_its_own(
        world: World, vendor: Vendor, engine: Engine, settings: Settings,
        clock: ManualClock) -> None:
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    add_devices(world, ["pump-a", "pump-b"])
    ro = world.rollout(release.id, waves=["100%"])
    assert vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                    authority=vendor.authority(), actor=world.alice,
                                    now=world.clock.now()).allows_start
    world.start(ro.id)
    passes: list[int] = []

    @contextlib.contextmanager
    def vendors() -> Iterator[Sequence[vendor_grants.VendorAuthority]]:
        passes.append(clock.now())
        yield [vendor.authority()]

    served = settings.model_copy(update={"vendor_check_interval_s": 0.05})
    with TestClient(create_app(served, clock=clock, engine=engine, vendors=vendors)):
        # The service asks while the grant holds: the rollout keeps running.
        assert _wait_for(lambda: len(passes) >= 2)
        assert world.status(ro.id).rollout.state == "running"
        vendor.store.recall("pump-2.0", reason="occlusion alarm may not sound",
                            at=world.clock.now())
        clock.advance(10)  # past the grant's continuation wait
        # No command is run: the service's own pass pauses the rollout.
        assert _wait_for(lambda: world.status(ro.id).rollout.state == "paused")
    status = world.status(ro.id).rollout
    assert "occlusion alarm may not sound" in status.status_reason
    with world.session() as s:
        row = s.get(Release, release.id)
        assert row is not None
        assert row.vendor_recall is not None
        records = s.execute(select(AuditRecord).where(
            AuditRecord.action == "release.vendor_recall")).scalars().all()
    assert [r.actor for r in records] == [ACTOR]
    assert json.loads(records[0].detail)["rollouts_paused"] == [ro.id]


def test_a_device_holds_a_biscuit_for_each_release_on_its_path(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-2.0", 2)
    vendor.publish("pump-3.0", 3, metadata={
        "device_classes": ["esp32-s3"], "pass_through": [2], "requires": [],
        "criticality": "routine", "criticality_note": ""})
    two = vendor.mirror("pump-2.0")
    three = vendor.mirror("pump-3.0")
    add_devices(world, ["pump-a"], installed={"app": 1})  # passes through #2
    add_devices(world, ["pump-b"], installed={"app": 2})  # goes to #3 at once
    ro = world.rollout(three.id, waves=["100%"])
    assert vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                    authority=vendor.authority(direct=True),
                                    actor=world.alice, now=world.clock.now()).allows_start
    world.start(ro.id)
    with world.session() as s:
        held = {(b.device_id, b.release_id): b for b in s.execute(select(DeviceBiscuit))
                .scalars()}
    assert set(held) == {("pump-a", two.id), ("pump-a", three.id), ("pump-b", three.id)}
    window = {(b.not_before, b.expires_at) for b in held.values()}
    assert len(window) == 1  # every one bound to the granted window

    direct = f"{VENDOR_URL}/direct"

    def fetch(device: str, release: str, token: str) -> int:
        answer = vendor.http.get(f"{direct}/{device}/releases/{release}/payload",
                                 headers={"Authorization": f"Bearer {token}"})
        return int(answer.status_code)

    # The first step is #2, from the vendor, with the biscuit for #2.
    doc = SimDevice(world, "pump-a", {"app": 1}).poll()
    assert doc[20] == two.id
    assert doc[10] == f"{direct}/pump-a/releases/pump-2.0/payload"
    step = Grant.from_map(doc[K_GRANT]).biscuit
    assert step == held[("pump-a", two.id)].token
    assert fetch("pump-a", "pump-2.0", step) == 200
    # Each biscuit opens its own release, for its own device only.
    assert fetch("pump-a", "pump-3.0", step) == 403
    assert fetch("pump-a", "pump-3.0", held[("pump-a", three.id)].token) == 200
    assert fetch("pump-a", "pump-2.0", held[("pump-a", three.id)].token) == 403
    assert fetch("pump-b", "pump-2.0", step) == 403
    doc = SimDevice(world, "pump-b", {"app": 2}).poll()
    assert doc[20] == three.id
    assert Grant.from_map(doc[K_GRANT]).biscuit == held[("pump-b", three.id)].token
