"""Scheduler ↔ AS ↔ RS: grant, fetch, rotate, continue, modify, revoke, discovery."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient, GnapClientError, discover
from suture.vendor_services.httpsig import SigningKey, sign_request

Rollout = Callable[..., list[dict[str, Any]]]
REPO = "http://testserver/releases"


def test_fetch_a_release_with_a_key_bound_token(
    client: GnapClient, vendor: TestClient, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout("app-1.0.0", devices=3))
    # The token's rights carry the rollout: the vendor sees what is installed, where, when.
    right = grant.token.access[0]
    assert right["identifier"] == "app-1.0.0"
    assert right["rollout"]["devices"] == ["pump-0000", "pump-0001", "pump-0002"]
    meta = client.fetch(grant, f"{REPO}/app-1.0.0").json()
    for name in ("envelope", "payload", "sbom", "notes"):
        body = client.fetch(grant, f"{REPO}/app-1.0.0/{name}").content
        assert len(body) == meta["artefacts"][name]["size"]
    assert client.fetch(grant, f"{REPO}/").json() == {"releases": ["app-1.0.0"]}
    client.finish(grant)
    repository = vendor.app.state.repository  # type: ignore[attr-defined]
    assert repository.served == 4


def test_rs_first_discovery_and_as_discovery(vendor: TestClient) -> None:
    response = vendor.get(f"{REPO}/app-1.0.0/payload")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('GNAP as_uri="http://testserver/gnap"')
    challenge = discover(vendor, f"{REPO}/")
    assert challenge.as_uri == "http://testserver/gnap"
    assert challenge.referrer == f"{REPO}/"
    options = vendor.options("/gnap").json()
    assert options["grant_request_endpoint"] == "http://testserver/gnap"
    assert options["key_proofs_supported"] == ["httpsig"]
    for path in ("/.well-known/gnap-as-rs", "/gnap/.well-known/gnap-as-rs"):
        rs_doc = vendor.get(path).json()
        assert rs_doc["introspection_endpoint"] == "http://testserver/gnap/introspect"


def test_rotation_before_expiry_replaces_the_value(
    client: GnapClient, clock: ManualClock, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    first = grant.token.value
    clock.advance(200)  # 100 s left of 300: more than the 60 s margin, no rotation yet
    assert client.ensure_fresh(grant).value == first
    clock.advance(50)  # 50 s left: rotate
    assert client.ensure_fresh(grant).value != first
    assert client.fetch(grant, f"{REPO}/app-1.0.0/notes").content == b"# app-1.0.0"
    clock.advance(200)  # past the original expiry; the rotated token is still in use
    assert client.fetch(grant, f"{REPO}/app-1.0.0/notes").status_code == 200


def test_key_by_value_client_when_allowed(
    vendor: TestClient, clock: ManualClock, rollout: Rollout
) -> None:
    stranger = GnapClient(
        vendor, grant_endpoint="http://testserver/gnap", key=SigningKey.generate("ES256"),
        clock=clock,
    )
    with pytest.raises(GnapClientError) as refused:
        stranger.request_grant(rollout())
    assert (refused.value.status, refused.value.code) == (401, "invalid_client")
    vendor.app.state.authorization.settings.allow_unregistered_clients = True  # type: ignore[attr-defined]
    grant = stranger.request_grant(rollout(devices=1))
    assert stranger.fetch(grant, f"{REPO}/app-1.0.0/sbom").json() == {"components": []}


def test_registered_key_presented_by_value_is_that_client(
    vendor: TestClient, scheduler_key: SigningKey, clock: ManualClock, rollout: Rollout
) -> None:
    by_value = GnapClient(
        vendor, grant_endpoint="http://testserver/gnap", key=scheduler_key, clock=clock
    )
    # St Mary's may have 10 devices per rollout; an unregistered client would have fewer.
    grant = by_value.request_grant(rollout(devices=10))
    assert len(grant.token.access[0]["rollout"]["devices"]) == 10


def test_continuation_poll_respects_wait(
    client: GnapClient, clock: ManualClock, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    old = grant.token.value
    with pytest.raises(GnapClientError) as refused:
        client.poll(grant)
    assert (refused.value.status, refused.value.code) == (429, "too_fast")
    clock.advance(grant.wait)
    client.poll(grant)
    assert grant.token.value != old
    # The new token works; the one it replaced does not.
    assert client.fetch(grant, f"{REPO}/app-1.0.0/notes").status_code == 200
    response = client.send("GET", f"{REPO}/app-1.0.0/notes", token=old)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")


def test_modify_grant_changes_the_rollout(client: GnapClient, rollout: Rollout) -> None:
    grant = client.request_grant(rollout("app-1.0.0"))
    client.modify(grant, rollout("app-2.0.0", devices=4))
    assert grant.token.access[0]["identifier"] == "app-2.0.0"
    assert client.fetch(grant, f"{REPO}/app-2.0.0/notes").content == b"# app-2.0.0"
    with pytest.raises(GnapClientError) as refused:
        client.fetch(grant, f"{REPO}/app-1.0.0/notes")
    assert (refused.value.status, refused.value.code) == (403, "insufficient_access")
    # Modifications are judged by the same policy: 11 devices exceed St Mary's bound.
    with pytest.raises(GnapClientError) as refused:
        client.modify(grant, rollout("app-2.0.0", devices=11))
    assert (refused.value.status, refused.value.code) == (403, "request_denied")


def test_revoked_grant_ends_continuation_and_tokens(
    client: GnapClient, clock: ManualClock, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    client.revoke_grant(grant)
    clock.advance(grant.wait)
    with pytest.raises(GnapClientError) as refused:
        client.poll(grant)
    assert (refused.value.status, refused.value.code) == (401, "invalid_continuation")
    with pytest.raises(GnapClientError) as refused:
        client.rotate(grant)
    assert refused.value.code == "invalid_rotation"
    with pytest.raises(GnapClientError) as refused:
        client.fetch(grant, f"{REPO}/app-1.0.0/notes")
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"client": "nobody", "access_token": {"access": []}}, 401, "invalid_client"),
        ({"access_token": {"access": []}}, 400, "invalid_request"),
        ({"client": "st-mary", "access_token": {"access": []}}, 400, "invalid_request"),
        ({"client": "st-mary", "access_token": [{"access": "x"}]}, 400, "invalid_request"),
        ({"client": "st-mary", "interact": {"start": ["redirect"]}}, 400, "invalid_interaction"),
        (
            {"client": "st-mary", "access_token": {"access": "ROLLOUT", "flags": ["bearer"]}},
            400,
            "invalid_flag",
        ),
        ({"client": "st-mary", "access_token": {"access": "OTHER-RELEASE"}}, 403, "request_denied"),
        ({"client": "st-mary", "access_token": {"access": "NO-RELEASE"}}, 403, "request_denied"),
        ({"client": "st-mary", "access_token": {"access": "MANY"}}, 403, "request_denied"),
        ({"client": "st-mary", "access_token": {"access": "LONG"}}, 403, "request_denied"),
        ({"client": "st-mary", "access_token": {"access": "PAST"}}, 403, "request_denied"),
    ],
)
def test_grant_request_refusals(
    client: GnapClient,
    vendor: TestClient,
    rollout: Rollout,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    token_request = body.get("access_token")
    if isinstance(token_request, dict) and isinstance(token_request.get("access"), str):
        access = rollout()
        kind = token_request["access"]
        window = access[0]["rollout"]["window"]
        if kind == "OTHER-RELEASE":
            access[0]["identifier"] = "other-9.9.9"
            vendor.app.state.repository.store.publish(  # type: ignore[attr-defined]
                "other-9.9.9", envelope=b"e", payload=b"p", sbom=b"", notes=b"", published_at=0
            )
        elif kind == "NO-RELEASE":
            access[0]["identifier"] = "app-9.9.9"
        elif kind == "MANY":
            access = rollout(devices=11)
        elif kind == "LONG":
            window["end"] = window["start"] + 30 * 86_400
        elif kind == "PAST":
            window["start"], window["end"] = window["start"] - 200, window["start"] - 100
        token_request["access"] = access
    response = client.send("POST", "http://testserver/gnap", body=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    # Nothing was granted.
    assert vendor.app.state.authorization.store.token_count() == 0  # type: ignore[attr-defined]


def test_introspection_never_echoes_the_token(
    client: GnapClient, vendor: TestClient, clock: ManualClock, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    introspector = vendor.app.state.repository.introspector  # type: ignore[attr-defined]
    url = "http://testserver/gnap/introspect"

    def introspect(token: str, **extra: Any) -> dict[str, Any]:
        request = {"access_token": token, "resource_server": "repository", **extra}
        body = json.dumps(request).encode()
        headers = sign_request(
            introspector.key, "POST", url, {"Content-Type": "application/json"}, body, clock=clock
        )
        response = vendor.post(url, content=body, headers=headers)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer

    answer = introspect(grant.token.value)
    assert answer["active"] is True
    assert grant.token.value not in json.dumps(answer)
    assert answer["key"] == {"proof": "httpsig", "jwk": client.key.jwk()}
    assert answer["iss"] == "http://testserver/gnap"
    assert answer["instance_id"] == "st-mary"
    assert answer["exp"] == answer["iat"] + 300
    # Continuation and management tokens are AS-specific: never active at an RS.
    assert introspect(grant.continue_token) == {"active": False}
    assert introspect(grant.token.manage_token) == {"active": False}
    assert introspect("not-a-token") == {"active": False}
    # RFC 9767 §3.3: with "access", active only if the token covers it (and it is understood).
    fetch = {"type": "suture-release", "actions": ["fetch"]}
    assert introspect(grant.token.value, access=[{**fetch, "identifier": "app-1.0.0"}])["active"]
    for access in ([{**fetch, "identifier": "app-2.0.0"}], [{**fetch, "actions": ["delete"],
                   "identifier": "app-1.0.0"}], ["app-1.0.0"], "app-1.0.0", []):
        assert introspect(grant.token.value, access=access) == {"active": False}, access


def test_introspection_refuses_unknown_resource_servers(
    client: GnapClient, vendor: TestClient, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    # A client cannot introspect its own (or anyone's) token: it is not a registered RS.
    response = client.send(
        "POST",
        "http://testserver/gnap/introspect",
        body={"access_token": grant.token.value, "resource_server": "st-mary"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_resource_server", "description": "unknown resource server"}
    }
