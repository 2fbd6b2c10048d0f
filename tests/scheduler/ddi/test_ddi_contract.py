"""Every DDI endpoint against the shapes of hawkBit's DDI documentation (the JSON examples in
fixtures/, written from it): what the scheduler answers has the documented fields with the
documented types, and what a documented client sends is accepted. Then the refusals: no or a
wrong token, another tenant, another device's action, bodies too large or malformed."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from ddi_world import TENANT, DdiClient, action_of, fixture, linux_device
from sched_world import Api, World
from suture.scheduler.ddi import service
from suture.scheduler.models import Device, DeviceEvent
from suture.scheduler.services import devices as device_service


def same_shape(documented: Any, ours: Any, where: str = "$") -> None:
    """Every field of the documented example is in ours, with the same JSON type (lists: the
    first documented element against each of ours)."""
    if isinstance(documented, dict):
        assert isinstance(ours, dict), f"{where}: expected an object, got {ours!r}"
        for key, value in documented.items():
            assert key in ours, f"{where}.{key} missing from {sorted(ours)}"
            same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {ours!r}"
        assert ours, f"{where}: empty list"
        if documented:
            for i, item in enumerate(ours):
                same_shape(documented[0], item, f"{where}[{i}]")
    else:
        assert type(ours) is type(documented), f"{where}: {ours!r} is not like {documented!r}"


@pytest.fixture
def deployed(world: World, api: Api) -> tuple[DdiClient, int]:
    """A Linux device in a running rollout of release #2 (a one-wave rollout)."""
    client = linux_device(world, api)
    release = world.release(2)
    rollout = world.rollout(release.id)
    world.start(rollout.id)
    return client, release.id


def test_base_poll_and_deployment_match_the_documented_shapes(
        deployed: tuple[DdiClient, int]) -> None:
    client, release_id = deployed
    poll = client.poll()
    same_shape(fixture("base_poll"), poll)
    assert re.fullmatch(r"\d\d:\d\d:\d\d", poll["config"]["polling"]["sleep"])
    deployment_path = client.link(poll, "deploymentBase")
    assert deployment_path is not None
    assert re.fullmatch(r"/deploymentBase/\d+\?c=\d+", deployment_path)
    assert client.feedback(action_of(deployment_path), "proceeding",
                           details=["Downloading"]).status_code == 200
    r = client.get(deployment_path + "&actionHistory=5")
    assert r.status_code == 200, r.text
    documented = fixture("deployment_base")
    del documented["deployment"]["maintenanceWindow"]  # only when the rollout has a window
    body = r.json()
    same_shape(documented, body)
    assert body["id"] == action_of(deployment_path)
    artefact = body["deployment"]["chunks"][0]["artifacts"][0]
    assert body["deployment"]["download"] == body["deployment"]["update"] == "forced"
    assert body["actionHistory"]["status"] == "RUNNING"
    assert body["actionHistory"]["messages"][0].endswith(" proceeding none: Downloading")
    # The artefact is the payload the release's SUIT envelope verified, hashes and all.
    download = client.link(artefact, "download")
    assert download == client.link(artefact, "download-http")
    assert download == f"/softwaremodules/{release_id}/artifacts/{artefact['filename']}"
    data = client.get(download)
    assert data.status_code == 200
    assert len(data.content) == artefact["size"]
    assert hashlib.sha256(data.content).hexdigest() == artefact["hashes"]["sha256"]
    assert hashlib.sha1(data.content).hexdigest() == artefact["hashes"]["sha1"]
    assert hashlib.md5(data.content).hexdigest() == artefact["hashes"]["md5"]
    part = client.get(download, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data.content)}"
    assert client.get(download, headers={"Range": f"bytes={len(data.content)}-"}
                      ).status_code == 416


def test_documented_feedback_is_accepted_and_recorded(world: World,
                                                      deployed: tuple[DdiClient, int]) -> None:
    client, _ = deployed
    action = action_of(client.link(client.poll(), "deploymentBase") or "")
    r = client.send("POST", f"/deploymentBase/{action}/feedback", fixture("feedback_proceeding"))
    assert r.status_code == 200, r.text
    assert _device(world, client.device_id).state == "downloading"
    r = client.send("POST", f"/deploymentBase/{action}/feedback",
                    fixture("feedback_closed_success"))
    assert r.status_code == 200, r.text
    device = _device(world, client.device_id)
    assert (device.state, device.installed) == ("confirmed", {"app": 2})
    history = client.get(f"/deploymentBase/{action}?actionHistory=-1").json()["actionHistory"]
    assert history["status"] == "FINISHED"
    assert [m.split(" ", 1)[1] for m in history["messages"]] == [
        "closed success: Installed", "proceeding none: Downloading the artefact"]
    poll = client.poll()
    assert client.link(poll, "deploymentBase") is None  # the action is closed
    installed = client.link(poll, "installedBase")
    assert installed == f"/installedBase/{action}"
    r = client.get(installed)
    assert r.status_code == 200
    same_shape({k: v for k, v in fixture("deployment_base").items() if k != "actionHistory"}
               | {"deployment": {k: v for k, v in fixture("deployment_base")["deployment"]
                                 .items() if k != "maintenanceWindow"}}, r.json())


def test_config_data_puts_attributes_into_the_registry(world: World, api: Api) -> None:
    client = linux_device(world, api)
    assert client.link(client.poll(), "configData") == "/configData"
    r = client.send("PUT", "/configData", fixture("config_data"))
    assert r.status_code == 200, r.text
    assert _device(world, client.device_id).attributes == {"VIN": "JH4TB2H26CC000000",
                                                           "hwRevision": "2"}
    assert client.link(client.poll(), "configData") is None  # asked for once
    client.send("PUT", "/configData", {"mode": "merge", "data": {"serial": "42"}})
    client.send("PUT", "/configData", {"mode": "remove", "data": {"VIN": ""}})
    assert _device(world, client.device_id).attributes == {"hwRevision": "2", "serial": "42"}
    client.send("PUT", "/configData", {"mode": "replace", "data": {"os": "bookworm"}})
    assert _device(world, client.device_id).attributes == {"os": "bookworm"}
    _, events = device_service.get_device(world.session(), device_id=client.device_id)
    assert [e.detail["mode"] for e in events if e.kind == "attributes"] == [
        "merge", "merge", "remove", "replace"]
    shown = api.client.get(f"/api/v1/devices/{client.device_id}", headers=api.op).json()
    assert (shown["kind"], shown["tenant"], shown["attributes"]) == (
        _device(world, client.device_id).kind, "DEFAULT", {"os": "bookworm"})
    assert shown["kind"] != "mcu"


def test_confirmation_base_maps_onto_busy(world: World, deployed: tuple[DdiClient, int]) -> None:
    """A busy device (in clinical use) is asked for its consent instead of being sent the
    deployment; ``denied`` defers the install, ``confirmed`` lets it proceed."""
    client, _ = deployed
    with world.session() as session, session.begin():
        session.get(Device, client.device_id).busy = True  # type: ignore[union-attr]
    poll = client.poll()
    assert client.link(poll, "deploymentBase") is None
    waiting = client.link(poll, "confirmationBase")
    assert waiting is not None
    root = client.get("/confirmationBase")
    assert root.status_code == 200
    same_shape(fixture("confirmation_base"), root.json())
    action = action_of(waiting)
    r = client.get(f"/confirmationBase/{action}")
    assert r.status_code == 200
    assert r.json()["confirmation"]["update"] == "skip"
    r = client.send("POST", f"/confirmationBase/{action}/feedback",
                    {"confirmation": "denied", "details": ["surgery in progress"]})
    assert r.status_code == 200
    assert _device(world, client.device_id).busy
    assert client.link(client.poll(), "deploymentBase") is None
    r = client.send("POST", f"/confirmationBase/{action}/feedback",
                    fixture("confirmation_feedback"))
    assert r.status_code == 200, r.text
    assert not _device(world, client.device_id).busy
    assert client.get("/confirmationBase").json() == {"autoConfirm": {"state": "active"},
                                                       "_links": {}}
    assert client.link(client.poll(), "deploymentBase") == f"/deploymentBase/{action}" + \
        (client.link(client.polls[-1], "deploymentBase") or "").partition(action)[2]


def test_cancel_action_after_an_abort_with_revert(world: World,
                                                  deployed: tuple[DdiClient, int]) -> None:
    from suture.scheduler.services import rollouts

    client, _ = deployed
    action = action_of(client.link(client.poll(), "deploymentBase") or "")
    assert client.get(f"/cancelAction/{action}").status_code == 404  # not being cancelled
    assert client.feedback(action, "proceeding").status_code == 200
    assert client.feedback(action, "downloaded").status_code == 200
    with world.session() as session, session.begin():
        from suture.scheduler.models import RolloutDevice

        entry = session.get(RolloutDevice, (1, client.device_id))
        assert entry is not None
        entry.state = "installing"  # the client started to install
    rollouts.abort_rollout(world.session(), rollout_id=1, revert=True, actor=world.alice,
                           now=world.clock.now())
    poll = client.poll()
    assert client.link(poll, "cancelAction") == f"/cancelAction/{action}"
    r = client.get(f"/cancelAction/{action}")
    assert r.status_code == 200
    same_shape(fixture("cancel_action"), r.json())
    assert r.json() == {"id": action, "cancelAction": {"stopId": action}}
    r = client.send("POST", f"/cancelAction/{action}/feedback", fixture("feedback_canceled"))
    assert r.status_code == 200, r.text
    assert world.status(1).totals == {"reverted": 1}
    assert client.link(client.poll(), "cancelAction") is None


def test_maintenance_window_fields(world: World, api: Api) -> None:
    """Outside the rollout's window: download, do not update; inside: both."""
    client = linux_device(world, api)
    release = world.release(2)
    # 2026-01-01 is a Thursday, 00:00 UTC: the window opens at 02:00 for an hour.
    rollout = world.rollout(release.id, window={"cron": "0 2 * * *", "duration_s": 3600,
                                                "tz": "UTC"})
    world.start(rollout.id)
    poll = client.poll()
    path = client.link(poll, "deploymentBase")
    assert path is not None
    deployment = client.get(path).json()["deployment"]
    assert (deployment["download"], deployment["update"], deployment["maintenanceWindow"]) == (
        "forced", "skip", "unavailable")
    assert poll["config"]["polling"]["sleep"] == "00:01:30"  # a tenth of 15 min: under way
    world.clock.advance(2 * 3600 + 60)
    deployment = client.get(client.link(client.poll(), "deploymentBase") or "").json()[
        "deployment"]
    assert (deployment["update"], deployment["maintenanceWindow"]) == ("forced", "available")
    same_shape(fixture("deployment_base")["deployment"], deployment)


# --- refusals ------------------------------------------------------------------------------

def test_tokens_tenants_and_actions_are_each_devices_own(world: World, api: Api,
                                                        deployed: tuple[DdiClient, int]) -> None:
    client, release_id = deployed
    other = linux_device(world, api, "lin-02", tenant="WARD7")
    action = action_of(client.link(client.poll(), "deploymentBase") or "")
    base = client.base
    cases = {
        "no token": {},
        "bearer": {"Authorization": f"Bearer {client.token}"},
        "wrong token": {"Authorization": "TargetToken " + "0" * 32},
        "another device's token": {"Authorization": f"TargetToken {other.token}"},
        "no gateway token issued": {"Authorization": f"GatewayToken {client.token}"},
    }
    for name, headers in cases.items():
        r = api.client.get(base, headers=headers)
        assert r.status_code == 401, name
        assert "TargetToken" in r.headers["WWW-Authenticate"], name
    # The device's own token under another tenant, and another tenant's device.
    assert api.client.get(f"/WARD7/controller/v1/{client.device_id}",
                          headers=client.headers).status_code == 401
    assert api.client.get(f"/{TENANT}/controller/v1/lin-02",
                          headers=other.headers).status_code == 401
    assert other.poll()["_links"] == {"configData": {
        "href": "http://testserver/WARD7/controller/v1/lin-02/configData"}}
    # Another device's action, and its artefact.
    assert other.get(f"/deploymentBase/{action}").status_code == 404
    assert other.feedback(action, "closed", "failure").status_code == 404
    name = "app-2.bin"
    assert other.get(f"/softwaremodules/{release_id}/artifacts/{name}").status_code == 404
    assert client.get(f"/softwaremodules/{release_id}/artifacts/other").status_code == 404
    # A gateway token answers for every device of its tenant, and of no other.
    gateway = service.issue_gateway_token(world.session(), tenant="WARD7", actor=world.alice,
                                          now=world.clock.now())
    as_gateway = {"Authorization": f"GatewayToken {gateway}"}
    assert api.client.get("/WARD7/controller/v1/lin-02", headers=as_gateway).status_code == 200
    assert api.client.get(base, headers=as_gateway).status_code == 401
    # A decommissioned device's token no longer works.
    device_service.decommission_device(world.session(), device_id="lin-02", actor=world.alice,
                                       now=world.clock.now())
    assert other.get().status_code == 401
    # Nothing a refused request sent was recorded.
    with world.session() as session:
        kinds = [e.kind for e in session.query(DeviceEvent).filter_by(device_id="lin-01")]
    assert "ddi" not in kinds


def test_bodies_are_bounded_and_checked_after_the_token(world: World, api: Api,
                                                        deployed: tuple[DdiClient, int]) -> None:
    client, _ = deployed
    action = action_of(client.link(client.poll(), "deploymentBase") or "")
    path = f"/deploymentBase/{action}/feedback"
    huge = {"status": {"execution": "proceeding", "result": {"finished": "none"},
                       "details": ["x" * 1000] * 70}}
    assert client.send("POST", path, huge).status_code == 413
    assert client.send("PUT", "/configData", {"data": {f"k{i}": "v" * 120 for i in range(600)}}
                       ).status_code == 413
    assert client.send("PUT", "/configData", {"data": {f"k{i}": "v" for i in range(65)}}
                       ).status_code == 422
    assert client.send("POST", path, b"[" * 100).status_code == 400
    assert client.send("POST", path, {"status": {"execution": "exploded"}}).status_code == 422
    assert client.send("POST", path, b"not json").status_code == 422
    # Without a valid token, a malformed body is refused as unauthenticated, unread.
    r = api.client.post(client.base + path, content=b"not json",
                        headers={"Authorization": "TargetToken nope",
                                 "Content-Type": "application/json"})
    assert r.status_code == 401
    assert _device(world, client.device_id).state == "idle"


def test_operator_routes_issue_tokens(world: World, api: Api) -> None:
    world.device("lin-09")
    r = api.client.post("/api/v1/devices/lin-09/ddi-token", json={"tenant": "WARD7"},
                        headers=api.as_("vera"))
    assert r.status_code == 403
    r = api.client.post("/api/v1/devices/lin-09/ddi-token", json={"tenant": "WARD7"},
                        headers=api.op)
    assert r.status_code == 201, r.text
    issued = r.json()
    assert (issued["tenant"], issued["kind"]) == ("WARD7", "linux")
    assert api.client.get("/WARD7/controller/v1/lin-09", headers={
        "Authorization": f"TargetToken {issued['token']}"}).status_code == 200
    r = api.client.post("/api/v1/ddi/tenants/WARD7/gateway-token", headers=api.op)
    assert r.status_code == 201
    assert api.client.get("/WARD7/controller/v1/lin-09", headers={
        "Authorization": f"GatewayToken {r.json()['token']}"}).status_code == 200
    # A new target token replaces the old one.
    again = api.client.post("/api/v1/devices/lin-09/ddi-token", json={"tenant": "WARD7"},
                            headers=api.op).json()
    assert api.client.get("/WARD7/controller/v1/lin-09", headers={
        "Authorization": f"TargetToken {issued['token']}"}).status_code == 401
    assert again["token"] != issued["token"]
    assert api.client.post("/api/v1/devices/nobody/ddi-token", json={},
                           headers=api.op).status_code == 404


def _device(world: World, device_id: str) -> Device:
    with world.session() as session:
        device = session.get(Device, device_id)
        assert device is not None
        return device


def test_a_silent_device_times_out_into_an_error(world: World,
                                                 deployed: tuple[DdiClient, int]) -> None:
    """A DDI device that started its deployment and went silent fails as any device does
    (``policies/timeouts.py``) and counts towards the error threshold; while it polls, it does
    not time out."""
    from suture.scheduler.services import rollouts

    client, _ = deployed
    action = action_of(client.link(client.poll(), "deploymentBase") or "")
    assert client.feedback(action, "proceeding").status_code == 200
    timeout = 3600
    for _ in range(3):  # polling keeps the deployment alive
        world.clock.advance(timeout // 2)
        client.poll()
        rollouts.advance(world.session(), now=world.clock.now(), deployment_timeout_s=timeout)
        assert world.status(1).totals == {"downloading": 1}
    world.clock.advance(timeout + 1)
    changes = rollouts.advance(world.session(), now=world.clock.now(),
                               deployment_timeout_s=timeout)
    assert [c.change for c in changes][:2] == ["timeout", "complete"]
    assert world.status(1).totals == {"failed": 1}
    # Heard of again with success, it counts as it should.
    assert client.feedback(action, "closed", "success").status_code == 200
    assert world.status(1).totals == {"succeeded": 1}


def test_polls_are_admitted_as_suture_s_own(world: World, api: Api) -> None:
    """DDI polls and suture's polls share one admission: past ``MAX_POLLS_IN_FLIGHT`` in
    progress, a DDI poll is 503 with Retry-After, and nothing is written."""
    from suture.scheduler.api.routes.device import MAX_POLLS_IN_FLIGHT, RETRY_AFTER_S, PollGate

    client = linux_device(world, api)
    gate = PollGate(in_flight=MAX_POLLS_IN_FLIGHT)
    api.client.app.state.poll_gate = gate  # type: ignore[attr-defined]
    r = client.get()
    assert r.status_code == 503
    assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert gate.refused == 1
    assert _device(world, client.device_id).last_seen is None
    gate.in_flight = MAX_POLLS_IN_FLIGHT - 1
    assert client.get().status_code == 200
    assert gate.in_flight == MAX_POLLS_IN_FLIGHT - 1
    assert _device(world, client.device_id).last_seen == world.clock.now()
