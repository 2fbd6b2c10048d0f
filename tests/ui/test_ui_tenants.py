"""The operator UI serves the scheduler's own tenant: an operator of a hospital tenant of the
vendor-run scheduler is refused at sign-in with the reason (it works through the API and the
CLI, scoped to its tenant), and no session is left behind."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sched_world import ADMIN, CLASS_ID, ROOT_SECRET, VENDOR_ID, World
from sqlalchemy import select
from suture.scheduler.authz import Principal, Role
from suture.scheduler.models import ApiToken
from suture.scheduler.schemas import DeviceCreate, RolloutCreate
from suture.scheduler.services import devices, operators, rollouts, tenants
from suture.scheduler.ui.session import SESSION_COOKIE
from ui_accounts import PASSWORD, give_password


def _st_mary(ui_world: World, operator: str, role: str, password: str | None) -> None:
    """The hospital tenant st-mary of a vendor-run scheduler, with one operator of its own."""
    provider, now = ui_world.op(ADMIN), ui_world.clock.now()
    tenants.add_tenant(ui_world.session(), name="st-mary", display_name="St Mary's",
                       mode=tenants.VENDOR_RUN_MODE, actor=provider, now=now)
    operators.add_operator(ui_world.session(), name=operator, roles=[role], password=password,
                           actor=provider, now=now, tenant="st-mary",
                           mode=tenants.VENDOR_RUN_MODE)


def test_a_tenants_operator_is_refused_at_sign_in(ui_client: TestClient,
                                                 ui_world: World) -> None:
    now = ui_world.clock.now()
    _st_mary(ui_world, "mary", "viewer", PASSWORD)
    page = ui_client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "mary", "password": PASSWORD,
                                        "signin_token": token.group(1), "next": "/fleet"})
    assert r.status_code == 403
    assert "operator of tenant st-mary" in r.text
    assert SESSION_COOKIE not in ui_client.cookies
    with ui_world.session() as s:
        issued = s.execute(select(ApiToken).where(ApiToken.operator == "mary")).scalars().all()
    assert [t.revoked_at for t in issued] == [now]  # the sign-in's token is revoked at once


def test_the_ui_shows_the_scheduler_tenants_own_devices_and_rollouts(
        ui_client: TestClient, ui_world: World) -> None:

    now = ui_world.clock.now()
    _st_mary(ui_world, "mary-admin", "administrator", None)
    # The hospital's administrator as it signs in (with the password the vendor gave it).
    mary_admin = Principal("mary-admin", frozenset({Role.ADMINISTRATOR}),
                                     "password", None, "st-mary")
    operators.add_operator(ui_world.session(), name="mary", roles=["device_manager",
                                                                    "rollout_operator"],
                           password=None, actor=mary_admin, now=now,
                           mode=tenants.VENDOR_RUN_MODE)
    issued = operators.issue_token(ui_world.session(), operator="mary", name="t", ttl_s=3600,
                                   actor=mary_admin, now=now)
    mary = operators.authenticate_token(ui_world.session(), token=issued.token, now=now)
    release = ui_world.release(2)
    ui_world.device("own-pump")
    devices.add_device(ui_world.session(), create=DeviceCreate(
        id="mary-pump", board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID,
        groups=["ward-3"], installed={"app": 1}), root_secret=ROOT_SECRET, actor=mary, now=now)
    theirs = rollouts.create_rollout(ui_world.session(), spec=RolloutCreate(
        name="st mary pumps", release_id=release.id, target_groups=["ward-3"],
        waves=["100%"]), actor=mary, now=now)
    ours = ui_world.rollout(release.id, name="our pumps", waves=["100%"])
    give_password(ui_world, "bob")
    page = ui_client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "bob", "password": PASSWORD,
                                        "signin_token": token.group(1), "next": "/fleet"})
    assert r.status_code == 303
    fleet = ui_client.get("/fleet").text
    assert "own-pump" in fleet
    assert "mary-pump" not in fleet
    waiting = ui_client.get("/approvals").text
    assert "our pumps" in waiting
    assert "st mary pumps" not in waiting
    assert ui_client.get(f"/rollouts/{theirs.id}").status_code == 404
    assert ui_client.get(f"/rollouts/{ours.id}").status_code == 200


def test_the_audit_page_shows_the_scheduler_tenants_own_records(
        ui_client: TestClient, ui_world: World) -> None:
    """As ``GET /api/v1/audit`` does: a hospital tenant's records stay out of the page (the
    chain's verification still covers every record)."""
    now = ui_world.clock.now()
    _st_mary(ui_world, "mary-admin", "administrator", None)
    mary_admin = Principal("mary-admin", frozenset({Role.ADMINISTRATOR}), "password", None,
                           "st-mary")
    operators.add_operator(ui_world.session(), name="mary", roles=["device_manager"],
                           password=None, actor=mary_admin, now=now,
                           mode=tenants.VENDOR_RUN_MODE)
    issued = operators.issue_token(ui_world.session(), operator="mary", name="t", ttl_s=3600,
                                   actor=mary_admin, now=now)
    mary = operators.authenticate_token(ui_world.session(), token=issued.token, now=now)
    devices.add_device(ui_world.session(), create=DeviceCreate(
        id="mary-pump", board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID,
        groups=["ward-3"], installed={"app": 1}), root_secret=ROOT_SECRET, actor=mary, now=now)
    ui_world.device("own-pump")
    give_password(ui_world, "alice")
    page = ui_client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "alice", "password": PASSWORD,
                                        "signin_token": token.group(1), "next": "/audit"})
    assert r.status_code == 303
    audit_page = ui_client.get("/audit", params={"action": "device."}).text
    assert "<td>own-pump</td>" in audit_page
    assert "mary-pump" not in audit_page
    assert "Chain verified" in audit_page
