"""Every page and action of the UI, walked from the app's own routes (a new page is walked too,
or this test names it missing): an operator whose roles lack the API operation's permission is
refused each one (403) and nothing changes; every page loads nothing from another host and
shows each status in words, never by colour alone."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sched_world import ADMIN, World
from sqlalchemy import func, select
from starlette.routing import BaseRoute
from suture.scheduler.models import AuditRecord, Device, Release, Rollout
from suture.scheduler.services import operators
from suture.scheduler.ui.mount import STATIC_DIR, UiRoute
from suture.scheduler.ui.session import CSRF_FIELD, SESSION_COOKIE, csrf_token
from test_ui_pages import sign_in
from ui_accounts import PASSWORD

#: Pages anybody may open (they sign in, or lead there).
OPEN: frozenset[tuple[str, str]] = frozenset({("GET", "/"), ("GET", "/signin"),
                                               ("POST", "/signin"), ("POST", "/signout")})

#: Each route's parameters in the walk, and the form an action is sent.
PARAMS = {"device_id": "pump-1", "action": "pause"}
FORMS = {"/rollouts/{rollout_id}/decide": {"decision": "approve", "reason": "fine"},
         "/fleet/{device_id}/busy": {"busy": "true"},
         "/rollouts/preview": {"name": "x", "release_id": "1", "target_groups": "ward-3"},
         "/rollouts": {"name": "x", "release_id": "1", "target_groups": "ward-3"},
         "/releases/{release_id}/recall": {"revert": "false"},
         "/fleet/{device_id}/decommission": {"reason": "gone"},
         "/releases/mirror": {"vendor": "acme", "release": "pump-7"}}


def _walk(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes, those of its included routers too (FastAPI keeps an included router
    as one route that holds it)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def _ui_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in _walk(client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and isinstance(route, UiRoute):
            found.extend((m, route.path) for m in sorted(route.methods or ()))
    return sorted(found)


def _world(world: World) -> dict[str, str]:
    world.device("pump-1", criticality=4)
    world.device("pump-2")
    release = world.release(2)
    rollout = world.rollout(release.id)
    world.start(rollout.id, approvers=("bob", "carol"))
    return {**PARAMS, "release_id": str(release.id), "rollout_id": str(rollout.id)}


def _url(path: str, params: dict[str, str]) -> str:
    """The path with the walk's parameters (a device's action is one of a device's)."""
    if path.startswith("/fleet/"):
        params = {**params, "action": "rotate"}
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)


def _state(world: World) -> tuple[object, ...]:
    with world.session() as s:
        counts = tuple(s.execute(select(func.count()).select_from(m)).scalar_one()
                       for m in (AuditRecord, Release, Rollout))
        rows = tuple((d.id, d.busy, d.credential_generation, d.decommissioned_at)
                     for d in s.execute(select(Device).order_by(Device.id)).scalars())
        states = tuple(s.execute(select(Rollout.state).order_by(Rollout.id)).scalars())
        recalled = tuple(s.execute(select(Release.recalled).order_by(Release.id)).scalars())
    return counts, rows, states, recalled


def test_every_page_and_action_is_refused_without_its_role(ui_client: TestClient,
                                                           ui_world: World) -> None:
    params = _world(ui_world)
    routes = _ui_routes(ui_client)
    assert len(routes) >= 25
    checked = set()
    before = _state(ui_world)
    # the administrator manages accounts only: it reads no device, release, rollout or audit
    # record, and changes none; the viewer reads and changes nothing
    for name in ("adam", "vera"):
        csrf = sign_in_admin(ui_client, ui_world) if name == "adam" else sign_in(
            ui_client, ui_world, name)
        for method, path in routes:
            if (method, path) in OPEN:
                continue
            url = _url(path, params)
            if method == "GET":
                if name == "vera" and path in READABLE_BY_A_VIEWER:
                    assert ui_client.get(url).status_code == 200, url
                    continue
                r = ui_client.get(url)
            else:
                r = ui_client.post(url, data={CSRF_FIELD: csrf, **FORMS.get(path, {})})
            assert r.status_code == 403, (name, method, url, r.status_code, r.text[:300])
            assert "needs" in r.text or "permission" in r.text, (name, url)
            checked.add((method, path))
    assert checked == set(routes) - OPEN
    assert _state(ui_world)[1:] == before[1:]  # nothing changed
    assert _state(ui_world)[0][1:] == before[0][1:]


#: The pages a viewer reads (the rest need another role).
READABLE_BY_A_VIEWER = frozenset({
    "/fleet", "/fleet/live", "/fleet/{device_id}", "/releases", "/releases/{release_id}",
    "/rollouts", "/rollouts/{rollout_id}", "/rollouts/{rollout_id}/live", "/approvals"})


def sign_in_admin(client: TestClient, world: World) -> str:
    """Sign in an administrator with a password ("adam"), who may not read the fleet (the
    landing page of the sign-in helper): the CSRF token of its forms."""
    operators.add_operator(world.session(), name="adam", roles=["administrator"],
                           password=PASSWORD, actor=world.op(ADMIN), now=world.clock.now())
    client.cookies.clear()
    token = re.search(r'name="signin_token" value="([^"]+)"', client.get("/signin").text)
    assert token is not None
    r = client.post("/signin", data={"name": "adam", "password": PASSWORD,
                                     "signin_token": token.group(1), "next": "/fleet"})
    assert r.status_code == 303
    landing = client.get("/fleet")
    assert landing.status_code == 403
    assert 'href="/fleet"' not in landing.text  # the navigation offers nothing it cannot open
    return csrf_token(client.cookies[SESSION_COOKIE])


_STATE = re.compile(r'<span class="state state-(\w+)">'
                    r'(?:<span aria-hidden="true">[^<]*</span>)?([^<]*)</span>')
_VERDICT = re.compile(r'<p class="verdict (\w+)"[^>]*>\s*<span aria-hidden="true">[^<]*</span>'
                      r"\s*<strong>([^<]+)</strong>")
_LINKS = re.compile(r'\b(?:src|href|action|data-live)="([^"]*)"')


def _check_page(url: str, page: str) -> int:
    """No asset or link to another host; each status a word, each verdict a word."""
    for link in _LINKS.findall(page):
        assert link.startswith(("/", "#", "?")), (url, link)
        assert not link.startswith("//"), (url, link)
    badges = _STATE.findall(page)
    assert len(badges) == page.count('class="state '), (url, "a status badge of another form")
    for kind, words in badges:
        assert re.search(r"[a-z]{2,}", words), (url, kind, words)
    verdicts = _VERDICT.findall(page)
    assert len(verdicts) == page.count('class="verdict '), url
    return len(badges) + len(verdicts)


def test_every_page_is_local_and_says_its_status_in_words(ui_client: TestClient,
                                                          ui_world: World) -> None:
    params = _world(ui_world)
    pump = ui_world.device("pump-3", groups=("ward-9",))
    pump.report("failed", busy=True, error={"code": 7, "message": "health check failed"})
    csrf = sign_in(ui_client, ui_world, "alice")
    shown = 0
    for method, path in _ui_routes(ui_client):
        if method != "GET" or path == "/":
            continue
        url = _url(path, {**params, "action": "abort"} if "confirm" in path and
                   "rollouts" in path else {**params, "action": "decommission"})
        r = ui_client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert "Content-Security-Policy" in r.headers
        shown += _check_page(url, r.text)
    preview = ui_client.post("/rollouts/preview", data={
        CSRF_FIELD: csrf, "name": "n", "release_id": params["release_id"],
        "target_groups": "ward-3"})
    shown += _check_page("preview", preview.text)
    sign_in(ui_client, ui_world, "bob")
    shown += _check_page("/approvals", ui_client.get("/approvals").text)
    shown += _check_page("404", ui_client.get("/fleet/nobody").text)
    assert shown >= 20
    for asset in STATIC_DIR.iterdir():
        text = asset.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), asset
        assert "https://" not in text, asset
        assert "@import" not in text, asset
    assert (STATIC_DIR / "ui.js").exists()
