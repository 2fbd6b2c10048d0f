"""The vendor's services bound every body as it streams in, and survive any JSON nesting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from asgi_stream import CHUNK, stream_request
from fastapi.testclient import TestClient
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient
from suture.vendor_services.gnap.jsonbody import MAX_BODY, MAX_JSON_DEPTH
from suture.vendor_services.httpsig import sign_request

HUGE = 150 * 1024 * 1024  # never sent whole


@pytest.mark.parametrize("path", ["/gnap", "/gnap/introspect", "/gnap/continue/x",
                                  "/gnap/token/x"])
def test_chunked_body_is_refused_once_past_the_bound(vendor: TestClient, path: str) -> None:
    status, answer, pulled = stream_request(vendor.app, "POST", path,
                                            {"content-type": "application/json"}, HUGE)
    assert status == 413, answer
    assert answer["error"]["code"] == "invalid_request"
    assert pulled <= MAX_BODY + CHUNK


def test_chunked_body_to_the_repository(
    client: GnapClient, vendor: TestClient, clock: ManualClock, rollout: Callable[..., Any]
) -> None:
    url = "http://testserver/releases/app-1.0.0/notes"
    # Without a token: refused before the body is read.
    status, answer, pulled = stream_request(vendor.app, "GET", "/releases/app-1.0.0/notes",
                                            {}, HUGE)
    assert (status, answer["error"]["code"]) == (401, "invalid_token")
    assert pulled <= CHUNK
    # With a live token, the signature check reads the body: bounded all the same.
    grant = client.request_grant(rollout())
    headers = sign_request(client.key, "GET", url, {"Authorization": f"GNAP {grant.token.value}"},
                           clock=clock)
    status, answer, pulled = stream_request(vendor.app, "GET", "/releases/app-1.0.0/notes",
                                            headers, HUGE)
    assert (status, answer["error"]["code"]) == (413, "invalid_request")
    assert pulled <= MAX_BODY + CHUNK


def test_declared_length_over_the_bound_is_refused_unread(vendor: TestClient) -> None:
    headers = {"content-type": "application/json", "content-length": str(HUGE)}
    status, answer, pulled = stream_request(vendor.app, "POST", "/gnap", headers, HUGE)
    assert (status, answer["error"]["code"], pulled) == (413, "invalid_request", 0)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 2000, 50_000])
def test_deeply_nested_grant_request_is_a_clear_400(vendor: TestClient, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    if len(body) > MAX_BODY:
        body = b"[" * depth
    response = vendor.post("/gnap", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "nested" in error["description"]


def test_deep_nesting_inside_strings_and_within_the_bound_is_fine(
    client: GnapClient, vendor: TestClient, clock: ManualClock
) -> None:
    # Brackets inside strings do not count; a grant request nests 6 levels.
    body = json.dumps({"client": "st-mary", "note": "[" * 5000}).encode()
    headers = sign_request(client.key, "POST", "http://testserver/gnap",
                           {"Content-Type": "application/json"}, body, clock=clock)
    response = vendor.post("/gnap", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["description"] == "access_token must be a single request object"


def test_deeply_nested_introspection_and_continuation_bodies(vendor: TestClient) -> None:
    body = b"[" * 50_000
    for path in ("/gnap/introspect", "/gnap/continue/x"):
        response = vendor.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 401), (path, response.text)
