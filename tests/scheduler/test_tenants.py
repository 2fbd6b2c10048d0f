"""The vendor-run scheduler serves several hospitals, each a tenant isolated in the database
and the API: a tenant's operators list, see, approve and act on their own devices, rollouts,
accounts and audit records only (another tenant's are answered 404, as absent), only its own
approvers count, and a rollout targets its own tenant's devices only. A hospital's own
scheduler (the default mode) has no tenant but ``DEFAULT`` and works as before."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID, Api, World
from sqlalchemy import select
from suture.scheduler.authz import Principal, Role
from suture.scheduler.ddi import service as ddi_service
from suture.scheduler.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from suture.scheduler.models import AuditRecord, DdiTenant, Device
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import (
    audit,
    devices,
    operators,
    rollouts,
    tenants,
    trust_rotations,
)

VENDOR_RUN = tenants.VENDOR_RUN_MODE
ROLES = {"planner": (Role.DEVICE_MANAGER, Role.ROLLOUT_OPERATOR, Role.AUDITOR),
         "approver": (Role.APPROVER,)}


@dataclass
class Hospital:
    """A tenant, its administrator, a planner and an approver (principals and tokens)."""

    name: str
    ops: dict[str, Principal]
    tokens: dict[str, str]


def _hospital(world: World, name: str) -> Hospital:
    now = world.clock.now()
    provider = world.op("root")  # the vendor's own administrator (tenant DEFAULT)
    tenants.add_tenant(world.session(), name=name, display_name=f"{name} hospital",
                       mode=VENDOR_RUN, actor=provider, now=now)
    admin_name = f"{name}-admin"
    operators.add_operator(world.session(), name=admin_name,
                           roles=[Role.ADMINISTRATOR.value], password=None, actor=provider,
                           now=now, tenant=name, mode=VENDOR_RUN)
    # The vendor's administrator gives the hospital's first administrator its token through
    # the hospital: it cannot act on another tenant's account itself.
    with pytest.raises(NotFoundError):
        operators.issue_token(world.session(), operator=admin_name, name="setup", ttl_s=3600,
                              actor=provider, now=now)
    # The hospital's administrator as it signs in (with the password the vendor gave it).
    admin = Principal(admin_name, frozenset({Role.ADMINISTRATOR}), "password", None, name)
    ops, tokens = {"admin": admin}, {}
    for role_name, roles in ROLES.items():
        account = f"{name}-{role_name}"
        operators.add_operator(world.session(), name=account, roles=[r.value for r in roles],
                               password=None, actor=admin, now=now, mode=VENDOR_RUN)
        issued = operators.issue_token(world.session(), operator=account, name="tests",
                                       ttl_s=3600 * 24, actor=admin, now=now)
        tokens[role_name] = issued.token
        ops[role_name] = operators.authenticate_token(world.session(), token=issued.token,
                                                      now=now)
        assert ops[role_name].tenant == name
    return Hospital(name, ops, tokens)


def _device(world: World, device_id: str, actor: Principal) -> None:
    devices.add_device(world.session(), create=DeviceCreate(
        id=device_id, board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID, groups=["ward-3"],
        installed={"app": 1}), root_secret=ROOT_SECRET, actor=actor, now=world.clock.now())


def _rollout(world: World, release_id: int, actor: Principal) -> int:
    return rollouts.create_rollout(world.session(), spec=RolloutCreate(
        name="app 2", release_id=release_id, target_groups=["ward-3"], waves=["100%"]),
        actor=actor, now=world.clock.now()).id


@pytest.fixture
def two(world: World) -> tuple[Hospital, Hospital]:
    return _hospital(world, "st-mary"), _hospital(world, "st-luke")


def test_each_tenants_operators_see_only_their_own(
        world: World, api: Api, two: tuple[Hospital, Hospital]) -> None:
    mary, luke = two
    release = world.release(2)
    _device(world, "mary-1", mary.ops["planner"])
    _device(world, "luke-1", luke.ops["planner"])
    world.device("own-1")  # the DEFAULT tenant's (a hospital's own scheduler's) device
    mary_ro = _rollout(world, release.id, mary.ops["planner"])
    luke_ro = _rollout(world, release.id, luke.ops["planner"])

    def get(h: Hospital, path: str) -> tuple[int, object]:
        r = api.client.get(path, headers={"Authorization": f"Bearer {h.tokens['planner']}"})
        return r.status_code, r.json()

    status, listed = get(mary, "/api/v1/devices")
    assert status == 200
    assert isinstance(listed, dict)
    assert [d["id"] for d in listed["devices"]] == ["mary-1"]
    assert listed["total"] == 1
    assert get(mary, "/api/v1/devices/mary-1")[0] == 200
    assert get(mary, "/api/v1/devices/luke-1")[0] == 404  # not 403: existence does not leak
    assert get(mary, "/api/v1/devices/own-1")[0] == 404
    status, ros = get(mary, "/api/v1/rollouts")
    assert isinstance(ros, list)
    assert [r["id"] for r in ros] == [mary_ro]
    assert get(mary, f"/api/v1/rollouts/{luke_ro}")[0] == 404
    assert get(luke, f"/api/v1/rollouts/{luke_ro}")[0] == 200
    # Acting on the other tenant's: answered as absent.
    r = api.client.post(f"/api/v1/rollouts/{luke_ro}/pause",
                        headers={"Authorization": f"Bearer {mary.tokens['planner']}"})
    assert r.status_code == 404
    r = api.client.patch("/api/v1/devices/luke-1", json={"busy": True},
                         headers={"Authorization": f"Bearer {mary.tokens['planner']}"})
    assert r.status_code == 404
    # The DEFAULT tenant's operators see their own only too.
    status, own = api.client.get("/api/v1/devices", headers=api.as_("alice")).status_code, \
        api.client.get("/api/v1/devices", headers=api.as_("alice")).json()
    assert [d["id"] for d in own["devices"]] == ["own-1"]
    assert api.client.get(f"/api/v1/rollouts/{mary_ro}", headers=api.as_("alice")
                          ).status_code == 404
    # Accounts and audit records: each tenant's own.
    status, accounts = get(mary, "/api/v1/operators")
    assert isinstance(accounts, list)
    assert {a["name"] for a in accounts} == {"st-mary-admin", "st-mary-planner",
                                            "st-mary-approver"}
    assert {a["tenant"] for a in accounts} == {"st-mary"}
    status, me = get(mary, "/api/v1/auth/whoami")
    assert isinstance(me, dict)
    assert (me["name"], me["tenant"]) == ("st-mary-planner", "st-mary")
    assert get(mary, "/api/v1/operators/st-luke-planner")[0] == 404
    status, records = get(mary, "/api/v1/audit?limit=1000")
    assert isinstance(records, list)
    assert records
    subjects = {r["subject"] for r in records}
    assert "mary-1" in subjects
    assert f"rollout:{mary_ro}" in subjects
    assert not subjects & {"luke-1", f"rollout:{luke_ro}", "own-1"}
    # The hash chain over every tenant's records still verifies; verifying (and checkpointing)
    # the whole chain is for the scheduler's own auditors.
    assert audit.verify(world.session()).ok
    assert get(mary, "/api/v1/audit/verify")[0] == 403
    assert api.client.get("/api/v1/audit/verify", headers=api.as_("alice")).json()["ok"]
    assert [t.device_id for t in trust_rotations.device_trust(world.session(),
                                                               tenant="st-mary")] == ["mary-1"]


def test_approvals_count_from_the_tenants_own_approvers_only(
        world: World, two: tuple[Hospital, Hospital]) -> None:
    mary, luke = two
    release = world.release(2)
    _device(world, "mary-1", mary.ops["planner"])
    ro = _rollout(world, release.id, mary.ops["planner"])
    now = world.clock.now()
    for outsider in (luke.ops["approver"], world.op("bob")):
        with pytest.raises(NotFoundError):
            rollouts.approve_rollout(world.session(), rollout_id=ro, actor=outsider, now=now)
    for outsider in (luke.ops["planner"], world.alice):
        with pytest.raises(NotFoundError):
            rollouts.start_rollout(world.session(), rollout_id=ro, actor=outsider, now=now)
    with pytest.raises(ConflictError, match="approv"):  # no approval of its own yet
        rollouts.start_rollout(world.session(), rollout_id=ro, actor=mary.ops["planner"],
                               now=now)
    rollouts.approve_rollout(world.session(), rollout_id=ro, actor=mary.ops["approver"],
                             now=now)
    started = rollouts.start_rollout(world.session(), rollout_id=ro,
                                     actor=mary.ops["planner"], now=now)
    assert started.state == "running"


def test_a_rollout_targets_its_own_tenants_devices_only(
        world: World, two: tuple[Hospital, Hospital]) -> None:
    mary, luke = two
    release = world.release(2)
    for i in range(3):
        _device(world, f"mary-{i}", mary.ops["planner"])
    _device(world, "luke-0", luke.ops["planner"])
    world.device("own-0")
    status = rollouts.rollout_status(world.session(), tenant="st-mary", rollout_id=_rollout(
        world, release.id, mary.ops["planner"]))
    assert status.rollout.target_count == 3
    luke_ro = _rollout(world, release.id, luke.ops["planner"])
    assert rollouts.rollout_status(world.session(), rollout_id=luke_ro, tenant="st-luke"
                                   ).rollout.target_count == 1
    own = world.rollout(release.id, waves=["100%"])
    assert own.target_count == 1  # own-0 only: the registered tenants' devices are theirs
    # A tenant cannot name another tenant's device as a target either.
    with pytest.raises(Exception, match="matches no device"):
        rollouts.create_rollout(world.session(), spec=RolloutCreate(
            name="x", release_id=release.id, target_groups=["ward-3"],
            target_filter="id == 'luke-0'", waves=["100%"]),
            actor=mary.ops["planner"], now=world.clock.now())


def test_tenant_accounts_stay_in_their_tenant(world: World,
                                              two: tuple[Hospital, Hospital]) -> None:
    mary, _ = two
    now = world.clock.now()
    with pytest.raises(ForbiddenError, match="scheduler's own operators"):
        operators.add_operator(world.session(), name="intruder", roles=["approver"],
                               password=None, actor=mary.ops["admin"], now=now,
                               tenant="st-luke", mode=VENDOR_RUN)
    with pytest.raises(ForbiddenError):
        tenants.add_tenant(world.session(), name="st-john", display_name="", mode=VENDOR_RUN,
                           actor=mary.ops["admin"], now=now)
    with pytest.raises(NotFoundError):
        operators.set_roles(world.session(), name="st-luke-planner", roles=["viewer"],
                            actor=mary.ops["admin"], now=now)
    with pytest.raises(NotFoundError):
        operators.set_active(world.session(), name="alice", active=False,
                             actor=mary.ops["admin"], now=now)
    assert [t.name for t in tenants.list_tenants(world.session(), actor=mary.ops["planner"])
            ] == ["st-mary"]


def test_a_hospitals_own_scheduler_has_no_tenants(world: World) -> None:
    now = world.clock.now()
    with pytest.raises(ConflictError, match="vendor-run"):
        tenants.add_tenant(world.session(), name="st-mary", display_name="", actor=world.op(
            "root"), mode=tenants.HOSPITAL_MODE, now=now)
    with pytest.raises(ConflictError, match="vendor-run"):
        operators.add_operator(world.session(), name="x", roles=["viewer"], password=None,
                               actor=world.op("root"), now=now, tenant="st-mary")
    # Its operators and devices are the DEFAULT tenant's, as they always were.
    assert world.alice.tenant == tenants.DEFAULT_TENANT
    world.device("pump-1")
    rows, total = devices.list_devices(world.session())
    assert total == 1
    assert rows[0].tenant == tenants.DEFAULT_TENANT


def test_ddi_tokens_stay_within_the_operators_tenant(world: World,
                                                     two: tuple[Hospital, Hospital]) -> None:
    """A tenant's operator issues DDI tokens for its own devices and under its own name only:
    another tenant's device is absent, a device is not moved into another tenant's scope, and
    neither a hospital's operator nor the vendor's staff holds a gateway token for another
    tenant's devices."""
    mary, luke = two
    now = world.clock.now()
    planner = mary.ops["planner"]
    _device(world, "mary-1", planner)
    _device(world, "luke-1", luke.ops["planner"])

    with pytest.raises(NotFoundError):
        ddi_service.issue_target_token(world.session(), device_id="luke-1", tenant="st-mary",
                                       kind="linux", actor=planner, now=now)
    with pytest.raises(InvalidInputError, match="/st-mary/ only"):
        ddi_service.issue_target_token(world.session(), device_id="mary-1", tenant="st-luke",
                                       kind="linux", actor=planner, now=now)
    for actor in (planner, world.alice):  # a hospital's operator, the vendor's staff
        with pytest.raises(InvalidInputError):
            ddi_service.issue_gateway_token(world.session(), tenant="st-luke", actor=actor,
                                            now=now)
    with world.session() as s:
        device = s.get(Device, "luke-1")
        assert device is not None
        assert (device.tenant, device.ddi_token_hash) == ("st-luke", None)
        assert s.get(DdiTenant, "st-luke") is None

    target = ddi_service.issue_target_token(world.session(), device_id="mary-1",
                                            tenant="st-mary", kind="linux", actor=planner,
                                            now=now)
    gateway = ddi_service.issue_gateway_token(world.session(), tenant="st-mary", actor=planner,
                                              now=now)
    with world.session() as s, s.begin():
        for header in (f"TargetToken {target}", f"GatewayToken {gateway}"):
            assert ddi_service.authenticated_device(
                s, tenant="st-mary", device_id="mary-1", authorization=header).id == "mary-1"
        with pytest.raises(AuthenticationError):
            ddi_service.authenticated_device(s, tenant="st-luke", device_id="luke-1",
                                             authorization=f"GatewayToken {gateway}")
        recorded = s.execute(select(AuditRecord.action, AuditRecord.tenant).where(
            AuditRecord.action.startswith("d"), AuditRecord.actor == planner.name,
            AuditRecord.action != "device.add")).all()
    assert sorted(recorded) == [("ddi.gateway_token", "st-mary"),
                                ("device.ddi_target_token", "st-mary")]
