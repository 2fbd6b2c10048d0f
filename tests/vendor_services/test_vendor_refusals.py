"""Every refusal the issue lists: a clear 4xx, the error code, and nothing served."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient, GrantState
from suture.vendor_services.httpsig import SigningKey, sign_request

Rollout = Callable[..., list[dict[str, Any]]]
NOTES = "http://testserver/releases/app-1.0.0/notes"


@pytest.fixture
def grant(client: GnapClient, rollout: Rollout) -> GrantState:
    return client.request_grant(rollout("app-1.0.0"))


def refused(vendor: TestClient, response: Any, status: int, code: str) -> None:
    """The request was refused as expected and no file was served."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert b"app-1.0.0" not in response.content
    if status == 401:
        assert response.headers["www-authenticate"].startswith("GNAP as_uri=")
    assert vendor.app.state.repository.served == 0  # type: ignore[attr-defined]


def signed_get(
    key: SigningKey, token: str, clock: ManualClock, **options: Any
) -> dict[str, str]:
    headers = {"Authorization": f"GNAP {token}"}
    return sign_request(key, "GET", NOTES, headers, clock=clock, **options)


def test_no_token(vendor: TestClient) -> None:
    refused(vendor, vendor.get(NOTES), 401, "invalid_token")


def test_unknown_token(vendor: TestClient, client: GnapClient) -> None:
    refused(vendor, client.send("GET", NOTES, token="made-up-token"), 401, "invalid_token")


def test_malformed_authorization(vendor: TestClient) -> None:
    refused(vendor, vendor.get(NOTES, headers={"Authorization": "Bearer x"}), 401, "invalid_token")


def test_expired_token(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    clock.advance(301)
    refused(vendor, client.send("GET", NOTES, token=grant.token.value), 401, "invalid_token")


def test_revoked_token(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    client.revoke_token(grant)
    refused(vendor, client.send("GET", NOTES, token=grant.token.value), 401, "invalid_token")


def test_revoked_token_after_use_is_refused_at_once(
    vendor: TestClient, client: GnapClient, grant: GrantState
) -> None:
    assert client.send("GET", NOTES, token=grant.token.value).status_code == 200
    vendor.app.state.repository.served = 0  # type: ignore[attr-defined]
    client.revoke_token(grant)
    # The RS cached the answer, but the revocation voids the cache at once.
    refused(vendor, client.send("GET", NOTES, token=grant.token.value), 401, "invalid_token")


def test_rotated_away_token(vendor: TestClient, client: GnapClient, grant: GrantState) -> None:
    old = grant.token.value
    client.rotate(grant)
    refused(vendor, client.send("GET", NOTES, token=old), 401, "invalid_token")


def test_token_for_another_release(
    vendor: TestClient, client: GnapClient, grant: GrantState
) -> None:
    other = "http://testserver/releases/app-2.0.0/payload"
    response = client.send("GET", other, token=grant.token.value)
    assert b"payload of" not in response.content
    refused(vendor, response, 403, "insufficient_access")


def test_missing_signature(vendor: TestClient, grant: GrantState) -> None:
    response = vendor.get(NOTES, headers={"Authorization": f"GNAP {grant.token.value}"})
    refused(vendor, response, 401, "invalid_signature")


def test_wrong_signature(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    headers = signed_get(client.key, grant.token.value, clock)
    label, _, value = headers["Signature"].partition("=:")
    flipped = ("A" if value[0] != "A" else "B") + value[1:]
    headers["Signature"] = f"{label}=:{flipped}"
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def test_signature_over_other_components(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    # Signed without the Authorization header: the token could be swapped underneath.
    only = ("@method", "@target-uri")
    headers = signed_get(client.key, grant.token.value, clock, components=only)
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def test_signature_for_another_uri(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    headers = sign_request(
        client.key, "GET", "http://testserver/releases/app-1.0.0/sbom",
        {"Authorization": f"GNAP {grant.token.value}"}, clock=clock,
    )
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def test_replayed_nonce(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    headers = signed_get(client.key, grant.token.value, clock)
    assert vendor.get(NOTES, headers=headers).status_code == 200
    vendor.app.state.repository.served = 0  # type: ignore[attr-defined]
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def test_stale_created(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    headers = signed_get(client.key, grant.token.value, clock)
    clock.advance(61)  # the signature window is 60 s (the token itself lives 300 s)
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def test_created_in_the_future(
    vendor: TestClient, client: GnapClient, grant: GrantState, clock: ManualClock
) -> None:
    future = ManualClock(clock() + 30)
    headers = signed_get(client.key, grant.token.value, future)
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


@pytest.mark.parametrize("same_kid", [False, True])
def test_wrong_key_for_the_token(
    vendor: TestClient, grant: GrantState, clock: ManualClock, same_kid: bool
) -> None:
    thief = SigningKey.generate("EdDSA")
    if same_kid:  # claims the token's keyid, signs with its own key
        thief = SigningKey(vendor_kid(vendor), thief.private_key)
    headers = signed_get(thief, grant.token.value, clock)
    refused(vendor, vendor.get(NOTES, headers=headers), 401, "invalid_signature")


def vendor_kid(vendor: TestClient) -> str:
    store = vendor.app.state.authorization.store  # type: ignore[attr-defined]
    kid: str = store.db.rows("SELECT kid FROM grants")[0][0]
    return kid


def test_tampered_body_at_the_as(
    vendor: TestClient, client: GnapClient, rollout: Rollout, clock: ManualClock
) -> None:
    url = "http://testserver/gnap"
    body = json.dumps({"client": "st-mary", "access_token": {"access": rollout()}}).encode()
    headers = sign_request(client.key, "POST", url, {"Content-Type": "application/json"}, body,
                           clock=clock)
    tampered = body.replace(b"pump-0001", b"pump-6666")
    response = vendor.post(url, content=tampered, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_client")
    assert "Content-Digest" in response.json()["error"]["description"]
    # Recomputing the digest does not help: the signature covers it.
    from http_message_signatures import ContentDigest

    headers["Content-Digest"] = ContentDigest.create(tampered)
    response = vendor.post(url, content=tampered, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_client")
    # The untampered request still goes through: nothing was spent by the refusals.
    assert vendor.post(url, content=body, headers=headers | {
        "Content-Digest": ContentDigest.create(body)}).status_code == 200
    store = vendor.app.state.authorization.store  # type: ignore[attr-defined]
    assert store.token_count() == 1


def test_unsigned_grant_request(vendor: TestClient, rollout: Rollout) -> None:
    body = {"client": "st-mary", "access_token": {"access": rollout()}}
    response = vendor.post("http://testserver/gnap", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_client")
    assert vendor.app.state.authorization.store.token_count() == 0  # type: ignore[attr-defined]


def test_continuation_with_another_key(
    vendor: TestClient, grant: GrantState, clock: ManualClock
) -> None:
    clock.advance(grant.wait)
    headers = sign_request(
        SigningKey.generate("ES256"), "POST", grant.continue_uri,
        {"Authorization": f"GNAP {grant.continue_token}"}, clock=clock,
    )
    response = vendor.post(grant.continue_uri, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_client")


def test_rotation_with_the_access_token_instead_of_the_management_token(
    client: GnapClient, grant: GrantState
) -> None:
    response = client.send("POST", grant.token.manage_uri, token=grant.token.value)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_rotation")


def test_key_rotation_is_not_supported(client: GnapClient, grant: GrantState) -> None:
    new = SigningKey.generate("EdDSA")
    response = client.send(
        "POST", grant.token.manage_uri, token=grant.token.manage_token,
        body={"key": {"proof": "httpsig", "jwk": new.jwk()}},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (
        400, "key_rotation_not_supported",
    )
