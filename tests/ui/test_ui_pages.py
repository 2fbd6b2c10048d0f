"""The UI without a browser (FastAPI's TestClient): sign-in and sessions, the role of every
page and action as the API's, CSRF, the rollout preview that saves nothing, the zone of times."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sched_world import World
from sqlalchemy import func, select
from suture.scheduler.models import AuditRecord, Rollout, RolloutApproval
from suture.scheduler.ui import permissions
from suture.scheduler.ui.session import CSRF_FIELD, SESSION_COOKIE, SIGNIN_COOKIE
from ui_accounts import PASSWORD, give_password

UI_SOURCES = Path(__file__).resolve().parents[2] / "host" / "suture" / "scheduler" / "ui"


def sign_in(client: TestClient, world: World, name: str) -> str:
    """Sign ``name`` in (given ``PASSWORD`` first); the CSRF token of its forms."""
    give_password(world, name)
    client.cookies.clear()
    page = client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post("/signin", data={"name": name, "password": PASSWORD,
                                     "signin_token": token.group(1), "next": "/fleet"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/fleet"
    fleet = client.get("/fleet")
    assert fleet.status_code == 200
    csrf = re.search(rf'name="{CSRF_FIELD}" value="([0-9a-f]+)"', fleet.text)
    assert csrf is not None
    return csrf.group(1)


def _count(world: World, model: type) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _critical_rollout(world: World) -> int:
    world.device("pump-1", criticality=4)
    world.device("pump-2", criticality=2)
    release = world.release(2)
    return world.rollout(release.id).id


def test_signed_out_goes_to_sign_in_and_back(ui_client: TestClient, ui_world: World) -> None:
    r = ui_client.get("/rollouts?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=/rollouts%3Fx%3D1"
    assert ui_client.get("/").headers["location"] == "/signin"
    post = ui_client.post("/rollouts/1/approve", data={CSRF_FIELD: "x"})
    assert post.status_code == 303
    assert post.headers["location"].startswith("/signin")


def test_sign_in_sets_a_strict_http_only_session(ui_client: TestClient, ui_world: World) -> None:
    give_password(ui_world, "vera")
    page = ui_client.get("/signin")
    assert SIGNIN_COOKIE in page.headers["set-cookie"]
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "vera", "password": PASSWORD,
                                        "signin_token": token.group(1), "next": "//evil/x"})
    assert r.status_code == 303
    assert r.headers["location"] == "/fleet"  # never another site
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert ui_client.get("/fleet").status_code == 200


def test_wrong_password_and_missing_signin_token_are_refused(ui_client: TestClient,
                                                             ui_world: World) -> None:
    give_password(ui_world, "vera")
    page = ui_client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "vera", "password": "not the password!",
                                        "signin_token": token.group(1)})
    assert r.status_code == 401
    assert "not recognised" in r.text
    assert SESSION_COOKIE not in ui_client.cookies
    r = ui_client.post("/signin", data={"name": "vera", "password": PASSWORD})
    assert r.status_code == 403
    assert SESSION_COOKIE not in ui_client.cookies


def test_a_viewer_cannot_approve(ui_client: TestClient, ui_world: World) -> None:
    rollout_id = _critical_rollout(ui_world)
    csrf = sign_in(ui_client, ui_world, "vera")
    assert 'href="/approvals"' not in ui_client.get("/fleet").text  # not offered
    r = ui_client.post(f"/rollouts/{rollout_id}/approve", data={CSRF_FIELD: csrf})
    assert r.status_code == 403
    assert "rollout:approve" in r.text
    assert _count(ui_world, RolloutApproval) == 0


def test_a_form_without_its_csrf_token_changes_nothing(ui_client: TestClient,
                                                       ui_world: World) -> None:
    rollout_id = _critical_rollout(ui_world)
    csrf = sign_in(ui_client, ui_world, "bob")
    before = _count(ui_world, AuditRecord)
    for data in ({}, {CSRF_FIELD: "0" * 64}):
        r = ui_client.post(f"/rollouts/{rollout_id}/approve", data=data)
        assert r.status_code == 403
        assert "CSRF" in r.text
    assert _count(ui_world, RolloutApproval) == 0
    assert _count(ui_world, AuditRecord) == before
    r = ui_client.post(f"/rollouts/{rollout_id}/approve", data={CSRF_FIELD: csrf})
    assert r.status_code == 303
    assert _count(ui_world, RolloutApproval) == 1


def test_the_two_person_rule_is_shown_and_held(ui_client: TestClient, ui_world: World) -> None:
    rollout_id = _critical_rollout(ui_world)
    csrf = sign_in(ui_client, ui_world, "alice")  # its creator
    page = ui_client.get(f"/rollouts/{rollout_id}").text
    assert "0 of 2" in page
    assert "two-person rule" in page
    assert "Approve as" not in page
    r = ui_client.post(f"/rollouts/{rollout_id}/approve", data={CSRF_FIELD: csrf})
    assert r.status_code == 403  # alice holds no approver role
    csrf = sign_in(ui_client, ui_world, "bob")
    ui_client.post(f"/rollouts/{rollout_id}/approve", data={CSRF_FIELD: csrf})
    again = ui_client.post(f"/rollouts/{rollout_id}/approve", data={CSRF_FIELD: csrf})
    assert again.status_code == 409  # once per approver
    assert "1 of 2" in ui_client.get("/approvals").text


@pytest.mark.parametrize("ui_engine", ["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)],
                         indirect=True)
def test_the_preview_saves_nothing(ui_client: TestClient, ui_world: World) -> None:
    ui_world.device("pump-1", criticality=4)
    release = ui_world.release(2)
    csrf = sign_in(ui_client, ui_world, "alice")
    form = {CSRF_FIELD: csrf, "name": "night update", "release_id": str(release.id),
            "target_groups": "ward-3", "waves": "50%, 100%", "window_cron": "0 2 * * *",
            "window_duration_min": "120", "window_tz": "Europe/Berlin"}
    audit_before = _count(ui_world, AuditRecord)
    r = ui_client.post("/rollouts/preview", data=form)
    assert r.status_code == 200, r.text
    assert "pump-1" in r.text
    assert "two-person rule" in r.text
    assert "2026-01-01 02:00 CET" in r.text  # the window, in the hospital's zone
    assert _count(ui_world, Rollout) == 0
    assert _count(ui_world, AuditRecord) == audit_before
    created = ui_client.post("/rollouts", data=form)
    assert created.status_code == 303
    assert _count(ui_world, Rollout) == 1
    bad = ui_client.post("/rollouts/preview", data={**form, "target_filter": "ward =="})
    assert bad.status_code == 422
    assert "filter" in bad.text.lower()


def test_times_are_in_the_hospitals_zone(ui_client: TestClient, ui_world: World) -> None:
    rollout_id = _critical_rollout(ui_world)
    sign_in(ui_client, ui_world, "vera")
    page = ui_client.get(f"/rollouts/{rollout_id}").text
    assert '<time datetime="2026-01-01T00:00:00Z">2026-01-01 01:00 CET</time>' in page
    assert "Europe/Berlin" in page


def test_fleet_filters_with_the_cli_language(ui_client: TestClient, ui_world: World) -> None:
    _critical_rollout(ui_world)
    sign_in(ui_client, ui_world, "vera")
    page = ui_client.get("/fleet", params={"q": 'criticality >= "critical"'}).text
    assert "pump-1" in page
    assert "pump-2" not in page
    quick = ui_client.get("/fleet", params={"criticality": "4"}).text
    assert "pump-1" in quick
    assert "pump-2" not in quick
    bad = ui_client.get("/fleet", params={"q": "colour == 3"}).text
    assert "unknown field" in bad


def test_the_audit_page_needs_the_auditor_and_shows_verification(ui_client: TestClient,
                                                                 ui_world: World) -> None:
    _critical_rollout(ui_world)
    sign_in(ui_client, ui_world, "vera")
    assert ui_client.get("/audit").status_code == 403
    sign_in(ui_client, ui_world, "alice")
    page = ui_client.get("/audit", params={"action": "rollout."}).text
    assert "Chain verified" in page
    assert "rollout.create" in page
    assert "operator.add" not in page


def test_sign_out_ends_the_session(ui_client: TestClient, ui_world: World) -> None:
    csrf = sign_in(ui_client, ui_world, "vera")
    cookie = ui_client.cookies[SESSION_COOKIE]
    assert ui_client.post("/signout", data={CSRF_FIELD: csrf}).status_code == 303
    ui_client.cookies.set(SESSION_COOKIE, cookie)
    assert ui_client.get("/fleet").status_code == 303  # the token was revoked


def test_release_page_shows_the_verified_manifest(ui_client: TestClient,
                                                  ui_world: World) -> None:
    ui_world.release(6)
    release = ui_world.release(7)
    sign_in(ui_client, ui_world, "vera")
    page = ui_client.get(f"/releases/{release.id}").text
    assert "CycloneDX" in page
    assert "Changes from release 1 (#6)" in page
    assert "added app-7.bin" in page
    assert "removed app-6.bin" in page
    assert "Verified" in page
    assert "app #7" in page
    assert "Sequence number</dt><dd>7" in page


_OPERATION = re.compile(r'(?:require|may)\(\s*"(GET|POST|PATCH|DELETE)",\s*"(/api/[^"]+)"')
_TEMPLATE_OPERATION = re.compile(r"may\('(GET|POST|PATCH|DELETE)', '(/api/[^']+)'\)")


def test_every_page_names_an_api_operation_that_exists(ui_client: TestClient) -> None:
    """The UI checks the permission of the API operation it names: each name must resolve,
    or a renamed route would leave a page unchecked."""
    named = set()
    for path in UI_SOURCES.rglob("*.py"):
        named |= set(_OPERATION.findall(path.read_text()))
    for path in (UI_SOURCES / "templates").glob("*.html"):
        named |= set(_TEMPLATE_OPERATION.findall(path.read_text()))
    from suture.scheduler.ui.context import NAV
    from suture.scheduler.ui.pages_rollouts import ACTIONS
    named |= {op for _, _, op in NAV} | {(m, p) for m, p, _ in ACTIONS.values()}
    assert len(named) >= 12
    for method, path in sorted(named):
        permissions.api_permission(ui_client.app, method, path)  # type: ignore[arg-type]
    with pytest.raises(permissions.UnknownOperationError):
        permissions.api_permission(ui_client.app, "GET", "/api/v1/nothing")  # type: ignore[arg-type]


def test_the_api_docs_load_nothing_from_elsewhere(ui_client: TestClient) -> None:
    page = ui_client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)=["\']([^"\']+)', page.text)
    sources += re.findall(r"url: ?'([^']+)'", page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in sources
    assert all(s.startswith("/") for s in sources), sources
    assert "cdn" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = ui_client.get(f"/docs/assets/{asset}")
        assert r.status_code == 200
        assert len(r.content) > 10_000
    assert ui_client.get("/redoc").status_code in (303, 404)


def test_pause_resume_and_abort_are_confirmed_first(ui_client: TestClient,
                                                    ui_world: World) -> None:
    rollout_id = _critical_rollout(ui_world)
    ui_world.start(rollout_id, approvers=("bob", "carol"))
    csrf = sign_in(ui_client, ui_world, "alice")
    for action, state in (("pause", "paused"), ("resume", "running"), ("abort", "aborted")):
        confirm = ui_client.get(f"/rollouts/{rollout_id}/confirm/{action}")
        assert confirm.status_code == 200
        assert f'action="/rollouts/{rollout_id}/{action}"' in confirm.text
        assert ui_world.status(rollout_id).rollout.state != state  # asking changes nothing
        done = ui_client.post(f"/rollouts/{rollout_id}/{action}", data={CSRF_FIELD: csrf})
        assert done.status_code == 303
        assert ui_world.status(rollout_id).rollout.state == state
    again = ui_client.post(f"/rollouts/{rollout_id}/abort", data={CSRF_FIELD: csrf})
    assert again.status_code == 409
    assert "already aborted" in again.text
    assert ui_client.get(f"/rollouts/{rollout_id}/confirm/explode").status_code == 404
