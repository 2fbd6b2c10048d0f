"""A device's failure while it is served a delta (revision 0012): recorded once per device and
release, the entry starts its step again and the next schedule carries the full payload; the
full payload's own failure then ends the entry as any failure does. A device with no delta
failure keeps being served the delta."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sched_world import CLASS_ID, VENDOR_ID, World, make_envelope
from sqlalchemy import select
from suture import suit
from suture.delta import make_delta
from suture.scheduler.models import DeltaFailure, RolloutDevice
from suture.scheduler.schedule_doc import K_PAYLOAD_URI, K_RELEASE_ID, K_ROLLOUT_ID
from suture.scheduler.services import deltas

CONDITION_FAILED = 24  # the delta's source condition did not hold: refused before any write


def _delta(world: World, release_id: int) -> int:
    _, v1 = make_envelope(world.vendor_key, world.tmp, 1)
    _, v2 = make_envelope(world.vendor_key, world.tmp, 2)
    d = make_delta(v1, v2)
    with tempfile.TemporaryDirectory() as tmp:
        envelope = suit.create_envelope({
            "sequence-number": 2, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
            "components": [d.component(["app"], "https://vendor.example/app-2.delta")],
        }, world.vendor_key, base_dir=Path(tmp))
    delta = deltas.import_delta(world.session(), release_id=release_id, envelope=envelope,
                                patch=d.patch, trust_anchors=[world.vendor_key.public_key()],
                                actor=world.alice)
    return delta.id


def _entry(world: World, rollout_id: int, device_id: str) -> RolloutDevice:
    with world.session() as s:
        entry = s.get(RolloutDevice, (rollout_id, device_id))
        assert entry is not None
        s.expunge(entry)
        return entry


def test_a_failed_delta_is_recorded_and_the_full_payload_follows(world: World) -> None:
    world.release(1)
    r2 = world.release(2)
    delta_id = _delta(world, r2.id)
    pump = world.device("pump")
    other = world.device("other")
    ro = world.rollout(r2.id)
    world.start(ro.id)
    doc = pump.poll()
    assert str(doc[K_PAYLOAD_URI]).endswith(f"/releases/{r2.id}/deltas/{delta_id}/payload")
    rid, rel = doc[K_ROLLOUT_ID], doc[K_RELEASE_ID]
    pump.report("downloading", rollout_id=rid, release_id=rel, progress=0)
    outcome = pump.report("failed", rollout_id=rid, release_id=rel,
                          error={"code": CONDITION_FAILED,
                                 "message": "the patch's source image is not on this device"})
    assert outcome.schedule_changed  # the agent polls again at once
    entry = _entry(world, ro.id, "pump")
    assert entry.state == "pending"
    assert f"delta {delta_id} failed, the full payload next" in entry.detail
    with world.session() as s:
        failure = s.get(DeltaFailure, ("pump", r2.id))
        assert failure is not None
        assert (failure.delta_id, failure.error_code) == (delta_id, CONDITION_FAILED)
        assert s.execute(select(DeltaFailure)).scalars().all() == [failure]
    doc = pump.poll()
    assert str(doc[K_PAYLOAD_URI]).endswith(f"/releases/{r2.id}/payload")
    # the other device, on the same release 1, is still served the delta
    assert str(other.poll()[K_PAYLOAD_URI]).endswith(f"/deltas/{delta_id}/payload")
    # the full payload fails too: no second fallback, the entry ends failed
    pump.report("downloading", rollout_id=rid, release_id=rel, progress=0)
    outcome = pump.report("failed", rollout_id=rid, release_id=rel,
                          error={"code": 31, "message": "update failed (error 31)"})
    entry = _entry(world, ro.id, "pump")
    assert entry.state == "failed"
    assert "error 31" in entry.detail


def test_a_failure_with_no_delta_served_ends_the_entry(world: World) -> None:
    world.release(1)
    r2 = world.release(2)
    pump = world.device("pump")
    ro = world.rollout(r2.id)
    world.start(ro.id)
    doc = pump.poll()
    assert str(doc[K_PAYLOAD_URI]).endswith(f"/releases/{r2.id}/payload")
    pump.report("downloading", rollout_id=doc[K_ROLLOUT_ID], release_id=doc[K_RELEASE_ID])
    pump.report("failed", rollout_id=doc[K_ROLLOUT_ID], release_id=doc[K_RELEASE_ID],
                error={"code": 35, "message": "update failed (error 35)"})
    assert _entry(world, ro.id, "pump").state == "failed"
    with world.session() as s:
        assert s.execute(select(DeltaFailure)).scalars().all() == []
