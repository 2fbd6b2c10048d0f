"""The device-facing HTTP API: authentication, anti-replay, bounds, ETags and ranges."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sched_world import AUDIT_KEY, CLASS_ID, VENDOR_ID, Api, World, make_release, release_upload
from sqlalchemy import Engine
from suture.keys import PrivateKey, generate_private_key
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_session_factory
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import (
    K_ACTION,
    K_DEVICE_ID,
    K_ENVELOPE_DIGEST,
    K_PAYLOAD_DIGEST,
    K_PAYLOAD_SIZE,
    K_PAYLOAD_URI,
    verify_schedule,
)
from suture.scheduler.services.schedules import ScheduleContext


def provision(api: Api, device_id: str, criticality: int = 2,
              groups: tuple[str, ...] | list[str] = ("ward-3",)) -> dict[str, object]:
    r = api.client.post("/api/v1/devices", headers=api.op, json={
        "id": device_id, "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
        "criticality": criticality, "groups": list(groups), "installed": {"app": 1}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload_release(api: Api, key: PrivateKey, tmp, seq: int) -> dict[str, object]:
    r = api.client.post("/api/v1/releases", headers=api.op,
                        json=release_upload(*make_release(key, tmp, seq)))
    return {"status": r.status_code, "body": r.json()}


def running_rollout(api: Api, vendor_key: PrivateKey, tmp) -> tuple[int, int]:
    rel = upload_release(api, vendor_key, tmp, 2)
    assert rel["status"] == 201, rel
    rid = rel["body"]["id"]  # type: ignore[index]
    r = api.client.post("/api/v1/rollouts", headers=api.op,
                        json={"name": "r", "release_id": rid, "target_groups": ["ward-3"]})
    assert r.status_code == 201, r.text
    ro = r.json()["rollout"]["id"]
    assert api.client.post(f"/api/v1/rollouts/{ro}/approve",
                           headers=api.as_("bob")).status_code == 200
    assert api.client.post(f"/api/v1/rollouts/{ro}/start", headers=api.op).status_code == 200
    return rid, ro


def test_schedule_is_signed_for_the_device_and_etag_gives_304(api: Api, scheduler_key: PrivateKey
                                                             ) -> None:
    provision(api, "pump-1")
    path = "/api/v1/devices/pump-1/schedule"
    r = api.device_get("pump-1", path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/cose")
    doc = verify_schedule(r.content, scheduler_key.public_key())
    assert doc[K_DEVICE_ID] == "pump-1"
    assert doc[K_ACTION] == 0
    again = api.device_get("pump-1", path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_download_with_range_resumes(api: Api, vendor_key: PrivateKey, scheduler_key: PrivateKey,
                                     tmp_path) -> None:
    provision(api, "pump-1")
    running_rollout(api, vendor_key, tmp_path)
    doc = verify_schedule(api.device_get("pump-1", "/api/v1/devices/pump-1/schedule").content,
                          scheduler_key.public_key())
    assert doc[K_ACTION] == 1
    path = doc[K_PAYLOAD_URI].removeprefix("http://127.0.0.1:8640")
    size = doc[K_PAYLOAD_SIZE]
    first = api.device_get("pump-1", path, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    etag = first.headers["etag"]
    rest = api.device_get("pump-1", path, headers={"Range": "bytes=100-", "If-Range": etag})
    assert rest.status_code == 206
    whole = first.content + rest.content
    assert len(whole) == size
    assert hashlib.sha256(whole).digest() == doc[K_PAYLOAD_DIGEST]
    assert etag == '"' + doc[K_PAYLOAD_DIGEST].hex() + '"'
    stale = api.device_get("pump-1", path, headers={"Range": "bytes=100-", "If-Range": '"x"'})
    assert stale.status_code == 200  # If-Range mismatch: the whole representation
    assert len(stale.content) == size
    beyond = api.device_get("pump-1", path, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    env = api.device_get("pump-1", path.replace("payload", "envelope"))
    assert hashlib.sha256(env.content).digest() == doc[K_ENVELOPE_DIGEST]
    # A device outside the rollout may not fetch the release.
    provision(api, "pump-9", groups=["elsewhere"])
    assert api.device_get("pump-9", path).status_code == 403


def test_large_payload_streams_in_chunks_and_any_range_is_exact(
        api: Api, vendor_key: PrivateKey, scheduler_key: PrivateKey, tmp_path: Path) -> None:
    """A payload of several storage chunks: the whole file and ranges that start, end or cross
    chunk boundaries come back byte for byte."""
    from suture.scheduler.models import BLOB_CHUNK_SIZE as C

    provision(api, "pump-1")
    payload = os.urandom(3 * C + 1234)
    r = api.client.post("/api/v1/releases", headers=api.op,
                        json=release_upload(*make_release(vendor_key, tmp_path, 2,
                                                          payload=payload)))
    assert r.status_code == 201, r.text
    ro = api.client.post("/api/v1/rollouts", headers=api.op, json={
        "name": "big", "release_id": r.json()["id"], "target_groups": ["ward-3"]}).json()
    for step, who in (("approve", "bob"), ("start", "alice")):
        rid = ro["rollout"]["id"]
        assert api.client.post(f"/api/v1/rollouts/{rid}/{step}",
                               headers=api.as_(who)).status_code == 200
    doc = verify_schedule(api.device_get("pump-1", "/api/v1/devices/pump-1/schedule").content,
                          scheduler_key.public_key())
    path = doc[K_PAYLOAD_URI].removeprefix("http://127.0.0.1:8640")
    whole = api.device_get("pump-1", path)
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(payload))
    assert whole.content == payload
    size = len(payload)
    for first, last in [(0, C - 1), (C - 1, C), (C, 2 * C - 1), (C - 5, 3 * C + 7),
                        (3 * C, size - 1), (size - 1, size - 1), (17, 17)]:
        part = api.device_get("pump-1", path, headers={"Range": f"bytes={first}-{last}"})
        assert part.status_code == 206, (first, last)
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert part.content == payload[first : last + 1], (first, last)
    tail = api.device_get("pump-1", path, headers={"Range": f"bytes=-{C + 3}"})
    assert tail.content == payload[-(C + 3):]


def test_report_moves_the_device_and_is_audited(api: Api, vendor_key: PrivateKey, tmp_path
                                                ) -> None:
    provision(api, "pump-1")
    rid, ro = running_rollout(api, vendor_key, tmp_path)
    body = json.dumps({"state": "downloading", "rollout_id": ro, "release_id": rid,
                       "progress": 100, "installed": {"app": 1}}).encode()
    r = api.device_post("pump-1", "/api/v1/devices/pump-1/reports", body)
    assert r.status_code == 200, r.text
    shown = api.client.get("/api/v1/devices/pump-1", headers=api.op).json()
    assert shown["state"] == "downloading"
    reports = [e for e in shown["history"] if e["kind"] == "report"]
    assert reports[-1]["detail"]["progress"] == 100
    schedules = [e for e in shown["history"] if e["kind"] == "schedule"]
    assert schedules[-1]["detail"]["action"] == "download"
    status = api.client.get(f"/api/v1/rollouts/{ro}", headers=api.op).json()
    assert status["totals"] == {"downloading": 1}
    assert api.client.get("/api/v1/audit/verify", headers=api.op).json()["ok"] is True


def _state_snapshot(api: Api) -> tuple[object, object]:
    dev = api.client.get("/api/v1/devices/pump-1", headers=api.op).json()
    audit = api.client.get("/api/v1/audit?limit=1000", headers=api.op).json()
    return (dev["state"], dev["installed"], len(dev["history"])), len(audit)


def test_bad_reports_are_refused_and_change_nothing(api: Api) -> None:
    provision(api, "pump-1")
    provision(api, "pump-2")
    path = "/api/v1/devices/pump-1/reports"
    good = json.dumps({"state": "idle", "installed": {"app": 1}}).encode()
    before = _state_snapshot(api)
    cases = {
        "not json": (b"{nope", 422),
        "unknown field": (json.dumps({"state": "idle", "owner": "x"}).encode(), 422),
        "bad state": (json.dumps({"state": "exploded"}).encode(), 422),
        "negative version": (json.dumps({"state": "idle", "installed": {"app": -1}}).encode(),
                             422),
        "oversize": (json.dumps({"state": "idle", "error": {"code": 1,
                                                           "message": "x" * 5000}}).encode(),
                     413),
    }
    for name, (body, status) in cases.items():
        r = api.device_post("pump-1", path, body)
        assert r.status_code == status, (name, r.text)
        assert "error" in r.json(), name
    # Another device's credential, for pump-1's resource.
    r = api.device_post("pump-2", path, good)
    assert r.status_code == 403
    # pump-1's id with pump-2's secret.
    from suture.scheduler.credentials import derive_secret
    wrong = derive_secret(bytes(range(32)), "pump-2", 1)
    assert api.device_post("pump-1", path, good, secret=wrong).status_code == 401
    # A MAC over another body.
    headers = api.device_headers("pump-1", "POST", path, b'{"state":"failed"}')
    assert api.client.post(path, content=good, headers=headers).status_code == 401
    # Stale timestamp.
    assert api.device_post("pump-1", path, good, time=api.clock.now() - 3600).status_code == 401
    # Missing headers.
    assert api.client.post(path, content=good).status_code == 401
    assert _state_snapshot(api) == before


def test_replayed_report_is_refused(api: Api) -> None:
    provision(api, "pump-1")
    path = "/api/v1/devices/pump-1/reports"
    body = json.dumps({"state": "downloading", "installed": {"app": 1}}).encode()
    headers = api.device_headers("pump-1", "POST", path, body, counter=10)
    assert api.client.post(path, content=body, headers=headers).status_code == 200
    before = _state_snapshot(api)
    replay = api.client.post(path, content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"] == "replayed"
    older = api.device_post("pump-1", path, body, counter=5)
    assert older.status_code == 401
    assert _state_snapshot(api) == before


def _resync_ok(r: Any, secret: bytes, device_id: str, counter: int) -> tuple[int, int]:
    from suture.scheduler import credentials as cr

    time, floor = int(r.headers[cr.HEADER_SERVER_TIME]), int(r.headers[cr.HEADER_COUNTER_FLOOR])
    want = cr.resync_headers(secret, device_id=device_id, request_counter=counter,
                             server_time=time, counter_floor=floor)
    assert r.headers[cr.HEADER_RESYNC_MAC] == want[cr.HEADER_RESYNC_MAC]
    return time, floor


def test_wrong_clock_gets_a_signed_resync_and_nothing_changes(api: Api) -> None:
    from suture.scheduler.credentials import derive_secret

    provision(api, "pump-1")
    secret = derive_secret(bytes(range(32)), "pump-1", 1)
    path = "/api/v1/devices/pump-1/schedule"
    assert api.device_get("pump-1", path, counter=40).status_code == 200
    before = _state_snapshot(api)
    for skew in (-30 * 86400, 3600):
        r = api.device_get("pump-1", path, time=api.clock.now() + skew, counter=50)
        assert r.status_code == 401
        assert r.json()["error"] == "clock_skew"
        time, floor = _resync_ok(r, secret, "pump-1", 50)
        assert abs(time - api.clock.now()) <= 1
        assert floor == 40
    assert _state_snapshot(api) == before
    # With the scheduler's time the same counter now works.
    assert api.device_get("pump-1", path, time=time, counter=50).status_code == 200


def test_counter_behind_gets_a_signed_floor(api: Api) -> None:
    from suture.scheduler.credentials import derive_secret

    provision(api, "pump-1")
    secret = derive_secret(bytes(range(32)), "pump-1", 1)
    path = "/api/v1/devices/pump-1/schedule"
    assert api.device_get("pump-1", path, counter=10_000).status_code == 200
    r = api.device_get("pump-1", path, counter=500)
    assert r.status_code == 401
    assert r.json()["error"] == "replayed"
    _, floor = _resync_ok(r, secret, "pump-1", 500)
    assert floor == 10_000
    assert api.device_get("pump-1", path, counter=floor + 1).status_code == 200


def test_no_resync_for_a_request_that_does_not_verify(api: Api) -> None:
    from suture.scheduler import credentials as cr

    provision(api, "pump-1")
    path = "/api/v1/devices/pump-1/schedule"
    wrong = cr.derive_secret(bytes(range(32)), "pump-1", 7)
    for r in (api.device_get("pump-1", path, secret=wrong, time=api.clock.now() + 86400),
              api.device_get("nobody", "/api/v1/devices/nobody/schedule"),
              api.client.get(path)):
        assert r.status_code in (401, 404)
        assert cr.HEADER_SERVER_TIME not in r.headers
        assert cr.HEADER_RESYNC_MAC not in r.headers


def test_schedule_of_another_device_is_forbidden(api: Api) -> None:
    provision(api, "pump-1")
    provision(api, "pump-2")
    r = api.device_get("pump-2", "/api/v1/devices/pump-1/schedule")
    assert r.status_code == 403


def test_rotated_credential_stops_the_old_secret(api: Api) -> None:
    provision(api, "pump-1")
    r = api.client.post("/api/v1/devices/pump-1/credential", headers=api.op)
    assert r.status_code == 200
    new = bytes.fromhex(r.json()["secret_hex"])
    path = "/api/v1/devices/pump-1/schedule"
    assert api.device_get("pump-1", path).status_code == 401
    assert api.device_get("pump-1", path, secret=new).status_code == 200


def test_release_that_does_not_verify_is_refused(api: Api, tmp_path) -> None:
    rogue = generate_private_key("ES256")
    r = upload_release(api, rogue, tmp_path, 2)
    assert r["status"] == 422
    assert r["body"]["error"] == "release_not_verified"  # type: ignore[index]
    assert api.client.get("/api/v1/releases", headers=api.op).json() == []


def test_release_with_tampered_payload_is_refused(api: Api, vendor_key: PrivateKey, tmp_path
                                                  ) -> None:
    envelope, payload, sbom = make_release(vendor_key, tmp_path, 2)
    r = api.client.post("/api/v1/releases", headers=api.op,
                        json=release_upload(envelope, payload[:-1] + b"!", sbom))
    assert r.status_code == 422
    assert "digest" in r.json()["message"]
    assert api.client.get("/api/v1/releases", headers=api.op).json() == []


def test_invalid_filter_expression_is_refused(api: Api, vendor_key: PrivateKey, tmp_path
                                              ) -> None:
    provision(api, "pump-1")
    rel = upload_release(api, vendor_key, tmp_path, 2)
    for bad in ('ward ==', 'nosuch == 1', 'criticality > "x"', "__import__('os')", "(" * 40):
        r = api.client.post("/api/v1/rollouts", headers=api.op, json={
            "name": "r", "release_id": rel["body"]["id"], "target_filter": bad})  # type: ignore[index]
        assert r.status_code == 422, bad
        assert r.json()["error"] == "invalid_filter", bad
    assert api.client.get("/api/v1/rollouts", headers=api.op).json() == []


def test_operator_routes_need_a_token(api: Api) -> None:
    assert api.client.get("/api/v1/devices").status_code == 401
    bad = {"Authorization": "Bearer sto_wrong"}
    assert api.client.get("/api/v1/devices", headers=bad).status_code == 401


def test_oversize_release_upload_is_refused_before_reading(api: Api) -> None:
    state = api.client.app.state.scheduler  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"max_release_bytes": 4096})
    big = "A" * 100_000
    r = api.client.post("/api/v1/releases", headers=api.op,
                        json={"envelope_b64": big, "payload_b64": ""})
    assert r.status_code == 413
    assert api.client.get("/api/v1/releases", headers=api.op).json() == []


def test_waves_advance_by_themselves_in_a_running_service(
        engine: Engine, settings: Settings, clock: ManualClock, vendor_key: PrivateKey,
        scheduler_key: PrivateKey, ctx: ScheduleContext, tmp_path: Path) -> None:
    world = World(make_session_factory(engine, audit_key=AUDIT_KEY), clock, ctx, scheduler_key,
                  vendor_key, tmp_path)
    devs = [world.device(f"d{i}") for i in range(3)]
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["1", "100%"], success_threshold=1.0)
    world.start(ro.id)
    first = next(d for d in devs if d.action() == Action.DOWNLOAD)
    first.update_fully()
    app = create_app(settings.model_copy(update={"advance_interval_s": 0.05}), clock=clock,
                     engine=engine)
    with TestClient(app):  # the lifespan runs the advancement timer
        deadline = time.monotonic() + 20
        while world.status(ro.id).rollout.current_wave == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert world.status(ro.id).rollout.current_wave == 1
