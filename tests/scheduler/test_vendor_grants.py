"""The vendor's grant validates the schedule: a rollout of a vendor's release starts only while
the vendor's AS granted rights describing it (release, device classes and count, waves,
windows), a change beyond the grant needs the vendor's say again, a recall pauses it, and
each device's schedule cites the grant (key 21)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sched_world import World
from sqlalchemy import select
from suture.scheduler.errors import ConflictError, InvalidInputError
from suture.scheduler.models import AuditRecord, Release, RolloutGrant
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import K_GRANT, Grant
from suture.scheduler.schemas import RolloutUpdate
from suture.scheduler.services import rollouts, vendor_grants
from vendor_loop import Vendor, add_devices, make_vendor


@pytest.fixture
def vendor(world: World, tmp_path: Path) -> Iterator[Vendor]:
    yield from make_vendor(world, tmp_path)


def _audit(world: World, action: str) -> list[dict[str, object]]:
    with world.session() as s:
        return [json.loads(r.detail) for r in s.execute(
            select(AuditRecord).where(AuditRecord.action == action)
            .order_by(AuditRecord.seq)).scalars()]


def test_a_refused_rollout_cannot_start_and_the_operator_sees_why(
        world: World, vendor: Vendor) -> None:
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    assert (release.vendor, release.vendor_release) == ("acme", "pump-2.0")
    vendor.policy(max_devices=2)
    add_devices(world, ["pump-a", "pump-b", "pump-c"])
    ro = world.rollout(release.id, waves=["1", "100%"])
    # Not asked yet: the plan says so, and the rollout cannot start.
    shown = world.status(ro.id).rollout.vendor
    assert shown["verdict"] == "not asked"
    assert shown["allows_start"] is False
    with pytest.raises(ConflictError, match="no grant from vendor acme"):
        world.start(ro.id)
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.verdict == "refused"
    assert "3 devices is more than the 2 the vendor allows for pump-2.0" in verdict.reason
    shown = world.status(ro.id).rollout.vendor
    assert shown["verdict"] == "refused"
    assert "more than the 2" in shown["reason"]
    with pytest.raises(ConflictError, match="vendor acme refused: 3 devices"):
        rollouts.start_rollout(world.session(), rollout_id=ro.id, actor=world.alice,
                               now=world.clock.now())
    assert world.status(ro.id).rollout.state != "running"
    refusals = _audit(world, "rollout.start_refused")
    assert any("more than the 2" in str(r.get("vendor")) for r in refusals)
    # The operator narrows the rollout; the vendor grants it; it starts.
    rollouts.update_rollout(world.session(), rollout_id=ro.id,
                            change=RolloutUpdate(target_filter="id != 'pump-c'"),
                            actor=world.alice, now=world.clock.now())
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.allows_start, verdict
    rights = verdict.rights["rollout"]
    assert (rights["count"], rights["classes"], rights["waves"]) == (2, ["esp32-s3"], [1, 1])
    assert verdict.reference.startswith("http://vendor.test/gnap/continue/")
    assert world.start(ro.id, approvers=("bob",)).state == "running"
    granted = _audit(world, "rollout.vendor_grant")
    assert [g["verdict"] for g in granted] == ["refused", "granted"]


def _granted_rollout(world: World, vendor: Vendor, devices: int = 2) -> tuple[int, int]:
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    add_devices(world, [f"pump-{i}" for i in range(devices)], group="ward-3")
    ro = world.rollout(release.id, waves=["100%"])
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.allows_start, verdict
    return release.id, ro.id


def test_a_change_beyond_the_grant_needs_a_new_grant(world: World, vendor: Vendor) -> None:
    vendor.policy(max_devices=3)
    _, ro_id = _granted_rollout(world, vendor)
    add_devices(world, ["pump-2"], group="ward-3")  # one more device: 3 of 3
    add_devices(world, ["pump-3"], group="ward-4")
    # A later window (a deadline) is beyond the grant: it must be asked for again.
    rollouts.update_rollout(world.session(), rollout_id=ro_id,
                            change=RolloutUpdate(target_groups=["ward-3"],
                                                 deadline=world.clock.now() + 10 * 86_400),
                            actor=world.alice, now=world.clock.now())
    shown = world.status(ro_id).rollout.vendor
    assert shown["allows_start"] is False
    assert "more devices (3, granted 2)" in shown["outdated"]
    with pytest.raises(ConflictError, match="the rollout changed since"):
        world.start(ro_id)
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro_id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.allows_start
    assert verdict.rights["rollout"]["count"] == 3
    with world.session() as s:
        reference = s.get(RolloutGrant, ro_id).reference  # type: ignore[union-attr]
    assert verdict.reference == reference  # the same grant, changed (RFC 9635 §5.3)
    # Four devices: beyond the vendor's policy; the change is refused with its reason.
    rollouts.update_rollout(world.session(), rollout_id=ro_id,
                            change=RolloutUpdate(target_groups=["ward-3", "ward-4"]),
                            actor=world.alice, now=world.clock.now())
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro_id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.verdict == "refused"
    assert "4 devices is more than the 3" in verdict.reason
    with pytest.raises(ConflictError, match="4 devices is more than the 3"):
        world.start(ro_id)
    # Back within the grant: the earlier grant covers it again, no new grant is needed.
    rollouts.update_rollout(world.session(), rollout_id=ro_id,
                            change=RolloutUpdate(target_groups=["ward-3"]),
                            actor=world.alice, now=world.clock.now())
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro_id,
                                       authority=vendor.authority(), actor=world.alice,
                                       now=world.clock.now())
    assert verdict.allows_start
    assert world.start(ro_id).state == "running"


def test_each_schedule_cites_the_grant(world: World, vendor: Vendor) -> None:
    from sched_world import SimDevice

    _, ro_id = _granted_rollout(world, vendor, devices=1)
    world.start(ro_id)
    device = SimDevice(world, "pump-0", {"app": 1})
    doc = device.poll()
    assert Action(doc[5]) in (Action.DOWNLOAD, Action.INSTALL)
    grant = Grant.from_map(doc[K_GRANT])
    assert grant.reference.startswith("http://vendor.test/gnap/continue/")
    assert grant.biscuit is None  # the hospital's scheduler serves the payload itself
    with pytest.raises(ValueError, match="grant reference"):
        Grant.from_map({2: "x"})


def test_a_vendor_recall_pauses_the_rollout(world: World, vendor: Vendor) -> None:
    release_id, ro_id = _granted_rollout(world, vendor)
    world.start(ro_id)
    assert vendor_grants.check_grants(world.session(), authority=vendor.authority(),
                                      actor="timer", now=world.clock.now()) == []
    vendor.store.recall("pump-2.0", reason="occlusion alarm may not sound",
                        at=world.clock.now())
    world.clock.advance(10)  # past the grant's continuation wait
    changed = vendor_grants.check_grants(world.session(), authority=vendor.authority(),
                                         actor="timer", now=world.clock.now())
    assert [v.verdict for v in changed] == ["refused"]
    status = world.status(ro_id).rollout
    assert status.state == "paused"
    assert "occlusion alarm may not sound" in status.status_reason
    with world.session() as s:
        release = s.get(Release, release_id)
        assert release is not None
        assert release.vendor_recall is not None
        assert release.vendor_recall["reason"] == "occlusion alarm may not sound"
    recalls = _audit(world, "release.vendor_recall")
    assert recalls
    assert recalls[0]["rollouts_paused"] == [ro_id]
    with pytest.raises(ConflictError, match="recalled"):
        rollouts.resume_rollout(world.session(), rollout_id=ro_id, actor=world.alice,
                                now=world.clock.now())
    with pytest.raises(ConflictError, match="recalled"):
        world.rollout(release_id, waves=["100%"])


def test_an_uploaded_release_needs_no_grant(world: World, vendor: Vendor) -> None:
    release = world.release(2)
    add_devices(world, ["pump-x"])
    ro = world.rollout(release.id, waves=["100%"])
    assert world.status(ro.id).rollout.vendor is None
    with pytest.raises(InvalidInputError, match="not from vendor acme"):
        vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                 authority=vendor.authority(), actor=world.alice,
                                 now=world.clock.now())
    assert world.start(ro.id).state == "running"


def test_direct_download_biscuits_are_bound_to_device_release_and_window(
        world: World, vendor: Vendor) -> None:
    from sched_world import SimDevice
    from suture.scheduler.models import DeviceBiscuit
    from suture.vendor_services import biscuits

    vendor.publish("pump-2.0", 2)
    vendor.publish("pump-3.0", 3)
    release = vendor.mirror("pump-2.0")
    add_devices(world, ["pump-a", "pump-b"])
    ro = world.rollout(release.id, waves=["100%"])
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro.id,
                                       authority=vendor.authority(direct=True),
                                       actor=world.alice, now=world.clock.now())
    assert verdict.allows_start
    world.start(ro.id)
    doc = SimDevice(world, "pump-a", {"app": 1}).poll()
    grant = Grant.from_map(doc[K_GRANT])
    assert grant.biscuit is not None
    direct = "http://vendor.test/direct"
    assert doc[10] == f"{direct}/pump-a/releases/pump-2.0/payload"
    assert doc[7] == f"{direct}/pump-a/releases/pump-2.0/envelope"

    def fetch(url: str, token: str) -> int:
        return vendor.http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code

    own = f"{direct}/pump-a/releases/pump-2.0/payload"
    assert fetch(own, grant.biscuit) == 200
    assert vendor.http.get(own).status_code == 401  # no biscuit
    # Stolen by another device, or used for another release: refused.
    assert fetch(f"{direct}/pump-b/releases/pump-2.0/payload", grant.biscuit) == 403
    assert fetch(f"{direct}/pump-a/releases/pump-3.0/payload", grant.biscuit) == 403
    with world.session() as s:
        rows = {b.device_id: b for b in s.execute(select(DeviceBiscuit)).scalars()}
    assert set(rows) == {"pump-a", "pump-b"}
    # Revoked (the vendor lists its authority block's revocation id): refused.
    assert fetch(f"{direct}/pump-b/releases/pump-2.0/payload", rows["pump-b"].token) == 200
    biscuits.revoke(vendor.settings.revoked_biscuits_path, rows["pump-b"].revocation_id)
    assert fetch(f"{direct}/pump-b/releases/pump-2.0/payload", rows["pump-b"].token) == 403
    # After the rollout's window: refused.
    world.clock.set(rows["pump-a"].expires_at + 1)
    assert fetch(own, grant.biscuit) == 403


def test_a_hospital_tenant_sees_the_vendors_refusal_and_recall_in_its_own_log(
        world: World, vendor: Vendor) -> None:
    from suture.scheduler.services import tenants
    from test_tenants import _device, _hospital, _rollout

    mary = _hospital(world, "st-mary")
    vendor.serve_hospitals("st-mary")
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    _device(world, "mary-1", mary.ops["planner"])
    add_devices(world, ["own-1"])
    mary_ro = _rollout(world, release.id, mary.ops["planner"])
    own_ro = world.rollout(release.id, waves=["100%"]).id
    now = world.clock.now()
    rollouts.approve_rollout(world.session(), rollout_id=mary_ro, actor=mary.ops["approver"],
                             now=now)
    with pytest.raises(ConflictError, match="no grant from vendor acme"):
        rollouts.start_rollout(world.session(), rollout_id=mary_ro,
                               actor=mary.ops["planner"], now=now)
    for ro, actor in ((mary_ro, mary.ops["planner"]), (own_ro, world.alice)):
        assert vendor_grants.ask_vendor(world.session(), rollout_id=ro,
                                        authority=vendor.authority(), actor=actor,
                                        now=now).allows_start
    rollouts.start_rollout(world.session(), rollout_id=mary_ro, actor=mary.ops["planner"],
                           now=now)
    world.start(own_ro)
    vendor.store.recall("pump-2.0", reason="occlusion alarm may not sound", at=now)
    world.clock.advance(10)
    vendor_grants.check_grants(world.session(), authority=vendor.authority(), actor="timer",
                               now=world.clock.now())
    assert rollouts.rollout_status(world.session(), rollout_id=mary_ro, tenant="st-mary"
                                   ).rollout.state == "paused"
    with world.session() as s:
        logged = {(r.action, r.subject): r.tenant for r in s.execute(select(AuditRecord))
                  .scalars() if r.subject in (f"rollout:{mary_ro}", f"rollout:{own_ro}")}
    # Each rollout's refusal and recall are in its own tenant's log, not another's.
    assert logged[("rollout.start_refused", f"rollout:{mary_ro}")] == "st-mary"
    assert logged[("rollout.vendor_recall", f"rollout:{mary_ro}")] == "st-mary"
    assert logged[("rollout.vendor_recall", f"rollout:{own_ro}")] == tenants.DEFAULT_TENANT
    with world.session() as s:
        record = s.execute(select(AuditRecord).where(
            AuditRecord.action == "rollout.vendor_recall",
            AuditRecord.subject == f"rollout:{mary_ro}")).scalar_one()
    detail = json.loads(record.detail)
    assert (detail["paused"], detail["reason"]) == (True, "occlusion alarm may not sound")


def test_a_paused_rollout_changed_beyond_its_grant_resumes_only_once_granted(
        world: World, vendor: Vendor) -> None:
    _, ro_id = _granted_rollout(world, vendor)
    world.start(ro_id)
    now = world.clock.now()
    rollouts.pause_rollout(world.session(), rollout_id=ro_id, actor=world.alice, now=now)
    # While paused, a later window (a deadline beyond the granted week) is a change of policy.
    rollouts.update_rollout(world.session(), rollout_id=ro_id,
                            change=RolloutUpdate(deadline=now + 10 * 86_400),
                            actor=world.alice, now=now)
    rollouts.approve_rollout(world.session(), rollout_id=ro_id, actor=world.op("bob"), now=now)
    assert "a later window end" in world.status(ro_id).rollout.vendor["outdated"]
    with pytest.raises(ConflictError, match=r"changed since \(a later window end\)"):
        rollouts.resume_rollout(world.session(), rollout_id=ro_id, actor=world.alice, now=now)
    assert world.status(ro_id).rollout.state == "paused"
    assert any("a later window end" in str(r["vendor"])
               for r in _audit(world, "rollout.resume_refused"))
    verdict = vendor_grants.ask_vendor(world.session(), rollout_id=ro_id,
                                       authority=vendor.authority(), actor=world.alice, now=now)
    assert verdict.allows_start
    assert verdict.rights["rollout"]["window"]["end"] == now + 11 * 86_400
    assert rollouts.resume_rollout(world.session(), rollout_id=ro_id, actor=world.alice,
                                   now=now).state == "running"


def test_each_hospital_tenants_rollout_is_judged_by_its_own_policy(
        world: World, vendor: Vendor) -> None:
    """The vendor-run scheduler is one GNAP client of the vendor for several hospitals: each
    rollout's right names its tenant, and the vendor judges it by that hospital's policy."""
    from suture.vendor_services.gnap.policies import PolicyStore, RolloutPolicy
    from test_tenants import _device, _hospital, _rollout

    vendor.serve_hospitals("st-luke", "st-john")
    policies = PolicyStore.load(vendor.settings.policies_path)
    policies.put(RolloutPolicy(client="st-luke", release="pump-*", max_devices=1))
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    luke, john = _hospital(world, "st-luke"), _hospital(world, "st-john")
    verdicts = {}
    for hospital in (luke, john):
        for i in range(2):
            _device(world, f"{hospital.name}-{i}", hospital.ops["planner"])
        ro = _rollout(world, release.id, hospital.ops["planner"])
        verdicts[hospital.name] = vendor_grants.ask_vendor(
            world.session(), rollout_id=ro, authority=vendor.authority(),
            actor=hospital.ops["planner"], now=world.clock.now())
    assert verdicts["st-luke"].verdict == "refused"
    assert "2 devices is more than the 1 the vendor allows" in verdicts["st-luke"].reason
    assert verdicts["st-john"].allows_start
    assert verdicts["st-john"].rights["rollout"]["hospital"] == "st-john"
    # The scheduler's own (DEFAULT) rollouts name no hospital: the client's own policy.
    add_devices(world, ["own-1"])
    own = world.rollout(release.id, waves=["100%"])
    mine = vendor_grants.ask_vendor(world.session(), rollout_id=own.id,
                                    authority=vendor.authority(), actor=world.alice,
                                    now=world.clock.now())
    assert mine.allows_start
    assert "hospital" not in mine.rights["rollout"]


def test_a_hospitals_operator_asks_the_vendor_through_the_api(
        world: World, vendor: Vendor, engine: object, settings: object, clock: object) -> None:
    """In the vendor-run mode the hospital's operators work through the API: they ask the
    vendor for their rollout's grant there and read its verdict; another tenant's rollout is
    absent to them, an uploaded release has no vendor to ask."""
    import contextlib
    from collections.abc import Sequence

    from fastapi.testclient import TestClient
    from suture.scheduler.api.app import create_app
    from suture.vendor_services.gnap.policies import PolicyStore, RolloutPolicy
    from test_tenants import _device, _hospital, _rollout

    vendor.serve_hospitals("st-mary", "st-luke")
    PolicyStore.load(vendor.settings.policies_path).put(
        RolloutPolicy(client="st-mary", release="pump-*", max_devices=1))
    vendor.publish("pump-2.0", 2)
    release = vendor.mirror("pump-2.0")
    mary, luke = _hospital(world, "st-mary"), _hospital(world, "st-luke")
    for i in range(2):
        _device(world, f"mary-{i}", mary.ops["planner"])
    ro = _rollout(world, release.id, mary.ops["planner"])
    from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID
    from suture.scheduler.schemas import DeviceCreate, RolloutCreate
    from suture.scheduler.services import devices

    devices.add_device(world.session(), create=DeviceCreate(
        id="mary-9", board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID, groups=["ward-9"],
        installed={"app": 1}), root_secret=ROOT_SECRET, actor=mary.ops["planner"],
        now=world.clock.now())
    uploaded = rollouts.create_rollout(world.session(), spec=RolloutCreate(
        name="uploaded", release_id=world.release(3).id, target_groups=["ward-9"],
        waves=["100%"]), actor=mary.ops["planner"], now=world.clock.now()).id

    @contextlib.contextmanager
    def vendors() -> Iterator[Sequence[vendor_grants.VendorAuthority]]:
        yield [vendor.authority()]

    app = create_app(settings, clock=clock, engine=engine, vendors=vendors)  # type: ignore[arg-type]
    with TestClient(app) as http:
        def post(who: str, rollout_id: int, path: str = "vendor-grant") -> Any:
            hospital = mary if who == "mary" else luke
            token = hospital.tokens["approver" if path == "approve" else "planner"]
            return http.post(f"/api/v1/rollouts/{rollout_id}/{path}",
                             headers={"Authorization": f"Bearer {token}"})

        answer = post("mary", ro)
        assert answer.status_code == 200, answer.text
        shown = answer.json()["rollout"]["vendor"]
        assert (shown["verdict"], shown["allows_start"]) == ("refused", False)
        assert "2 devices is more than the 1 the vendor allows" in shown["reason"]
        assert post("luke", ro).status_code == 404  # another tenant's: absent
        assert post("mary", uploaded).status_code == 422
        assert post("mary", ro, "approve").status_code == 200
        refused = post("mary", ro, "start")
        assert refused.status_code == 409
        assert "2 devices is more than the 1" in refused.json()["detail"]
        PolicyStore.load(vendor.settings.policies_path).put(
            RolloutPolicy(client="st-mary", release="pump-*", max_devices=2))
        granted = post("mary", ro).json()["rollout"]["vendor"]
        assert granted["allows_start"], granted
        assert granted["rights"]["rollout"]["hospital"] == "st-mary"
        assert post("mary", ro, "start").json()["rollout"]["state"] == "running"
