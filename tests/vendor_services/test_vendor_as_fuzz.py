"""Bad input to the authorization server: every answer is a GNAP error, nothing is granted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.authorization import AuthorizationServer
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.gnap.errors import ERROR_STATUS, GnapError
from suture.vendor_services.httpsig import SigningKey, sign_request
from suture.vendor_services.settings import VendorSettings

URL = "http://testserver/gnap"
FIXTURE = HealthCheck.function_scoped_fixture  # tmp_path is only a settings path here
KEY = SigningKey.generate("EdDSA")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "actions", "identifier", "locations", "rollout", "devices",
                         "window", "start", "end", "access", "flags", "x"]), inner, max_size=4),
    max_leaves=16,
)


def make_server(tmp: Path) -> AuthorizationServer:
    registry = Registry(None)
    registry.clients["st-mary"] = RegisteredClient("st-mary", KEY.jwk())
    return AuthorizationServer(
        VendorSettings(data_dir=tmp, public_url="http://testserver"), registry,
        release_exists=lambda r: r == "app-1.0.0", clock=ManualClock(),
    )


def answer(server: AuthorizationServer, body: bytes) -> tuple[int, str]:
    headers = sign_request(KEY, "POST", URL, {"Content-Type": "application/json"}, body,
                           clock=server.clock)
    try:
        status, _ = server.request_grant("POST", URL, headers, body)
    except GnapError as e:
        return e.status, e.code
    return status, "granted"


@settings(max_examples=300, deadline=None, suppress_health_check=[FIXTURE, HealthCheck.too_slow])
@given(token_request=json_values, flags=st.one_of(st.none(), json_values))
def test_fuzz_grant_requests(tmp_path: Path, token_request: Any, flags: Any) -> None:
    server = make_server(tmp_path)
    request: dict[str, Any] = {"client": "st-mary", "access_token": token_request}
    if flags is not None and isinstance(token_request, dict):
        token_request["flags"] = flags
    status, code = answer(server, json.dumps(request).encode())
    if code == "granted":
        assert status == 200
        assert server.store.token_count() == 1
    else:
        assert code in ERROR_STATUS
        assert 400 <= status < 500
        assert server.store.token_count() == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[FIXTURE, HealthCheck.too_slow])
@given(body=st.binary(max_size=200))
def test_fuzz_raw_bodies(tmp_path: Path, body: bytes) -> None:
    server = make_server(tmp_path)
    status, code = answer(server, body)
    assert code in ERROR_STATUS
    assert 400 <= status < 500
    assert server.store.token_count() == 0


def test_oversized_body_is_refused(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    body = json.dumps({"client": "st-mary", "pad": "x" * 70_000}).encode()
    assert answer(server, body) == (400, "invalid_request")
