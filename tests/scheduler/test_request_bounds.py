"""Bodies are bounded before they are read, and authenticated before they are parsed.

Chunked bodies (no Content-Length) go straight to the ASGI app, which counts what it pulls:
the answer must come once the route's limit is crossed, whatever the body's size.
"""

from __future__ import annotations

import json

from asgi_stream import CHUNK, stream_request
from sched_world import CLASS_ID, VENDOR_ID, Api
from suture.scheduler.api.bodylimit import JSON_BODY_LIMIT

HUGE = 300 * 1024 * 1024  # never sent whole: the app must stop pulling long before
REPORTS = "/api/v1/devices/pump-1/reports"


def _provision(api: Api) -> None:
    r = api.client.post("/api/v1/devices", headers=api.op, json={
        "id": "pump-1", "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID})
    assert r.status_code == 201, r.text


def test_unauthenticated_chunked_body_is_refused_before_it_is_read(api: Api) -> None:
    for path in ("/api/v1/rollouts", "/api/v1/devices", "/api/v1/releases"):
        status, answer, pulled = stream_request(api.client.app, "POST", path,
                                                {"content-type": "application/json"}, HUGE)
        assert status == 401, (path, answer)
        assert answer["error"] == "unauthenticated"
        assert pulled <= CHUNK, path  # the bearer check came first


def test_authenticated_chunked_json_body_stops_at_the_limit(api: Api) -> None:
    status, answer, pulled = stream_request(
        api.client.app, "POST", "/api/v1/rollouts",
        {"content-type": "application/json", **api.op}, HUGE)
    assert status == 413
    assert answer["error"] == "too_large"
    assert pulled <= JSON_BODY_LIMIT + CHUNK


def test_declared_length_over_the_limit_is_refused_unread(api: Api) -> None:
    headers = {"content-type": "application/json", "content-length": str(HUGE), **api.op}
    status, answer, pulled = stream_request(api.client.app, "POST", "/api/v1/rollouts",
                                            headers, HUGE)
    assert (status, answer["error"], pulled) == (413, "too_large", 0)


def test_release_uploads_have_their_own_bound(api: Api) -> None:
    state = api.client.app.state.scheduler  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"max_release_bytes": 2 * 1024 * 1024})
    status, answer, pulled = stream_request(
        api.client.app, "POST", "/api/v1/releases",
        {"content-type": "application/json", **api.op}, HUGE)
    assert status == 413, answer
    assert JSON_BODY_LIMIT < pulled <= 2 * 1024 * 1024 * 4 // 3 + 64 * 1024 + CHUNK


def test_chunked_report_stops_at_the_report_limit(api: Api) -> None:
    _provision(api)
    headers = api.device_headers("pump-1", "POST", REPORTS, b"")
    status, answer, pulled = stream_request(api.client.app, "POST", REPORTS, headers, HUGE,
                                            chunk=b"[" * 1000)
    assert status == 413, answer
    assert pulled <= 4096 + 1000


def test_deeply_nested_report_is_a_clear_400(api: Api) -> None:
    _provision(api)
    body = b"[" * 2000 + b"]" * 2000
    r = api.device_post("pump-1", REPORTS, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "too_deep"
    assert "nest" in r.json()["message"]
    nested = json.dumps({"state": "idle", "error": {"code": 1, "message": "x"}}).encode()
    assert api.device_post("pump-1", REPORTS, nested).status_code == 200


def test_report_mac_is_checked_before_the_body(api: Api) -> None:
    _provision(api)
    wrong = bytes(32)
    for body in (b"[" * 2000 + b"]" * 2000, b"{nope", json.dumps({"state": "bogus"}).encode()):
        r = api.device_post("pump-1", REPORTS, body, secret=wrong)
        assert r.status_code == 401, (body[:10], r.text)
        assert r.json()["error"] == "unauthenticated"
    # A replayed counter is refused as a replay, whatever the body.
    good = json.dumps({"state": "idle"}).encode()
    assert api.device_post("pump-1", REPORTS, good, counter=5).status_code == 200
    r = api.device_post("pump-1", REPORTS, b"{nope", counter=5)
    assert (r.status_code, r.json()["error"]) == (401, "replayed")


def test_deeply_nested_operator_json_is_400_and_needs_a_token_first(api: Api) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    headers = {"content-type": "application/json"}
    r = api.client.post("/api/v1/rollouts", content=body, headers=headers)
    assert r.status_code == 401
    r = api.client.post("/api/v1/rollouts", content=body, headers={**headers, **api.op})
    assert r.status_code == 400, r.text
