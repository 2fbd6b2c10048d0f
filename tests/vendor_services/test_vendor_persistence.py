"""The AS's grants, tokens and seen nonces outlive a restart: a new app on the same data
directory continues every grant, honours every token, and refuses every replay."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.vendor_services.app import create_app
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient, GnapClientError
from suture.vendor_services.gnap.clients import Registry
from suture.vendor_services.httpsig import SigningKey, sign_request
from suture.vendor_services.settings import VendorSettings

Rollout = Callable[..., list[dict[str, Any]]]
BASE = "http://testserver"
NOTES = f"{BASE}/releases/app-1.0.0/notes"


@contextmanager
def restarted(settings: VendorSettings, clock: ManualClock) -> Iterator[TestClient]:
    """A new vendor process on the same data directory (nothing shared in memory)."""
    app = create_app(settings, clock=clock, registry=Registry.load(settings.registry_path))
    with TestClient(app, base_url=BASE) as http:
        yield http


def test_a_grant_continues_after_a_restart(
    client: GnapClient, settings: VendorSettings, clock: ManualClock, rollout: Rollout,
    scheduler_key: SigningKey,
) -> None:
    grant = client.request_grant(rollout())
    issued = grant.token.value
    with restarted(settings, clock) as http:
        again = GnapClient(http, grant_endpoint=f"{BASE}/gnap", key=scheduler_key,
                           instance_id="st-mary", clock=clock)
        # The token issued before the restart is still honoured, and can be rotated.
        assert again.fetch(grant, NOTES).content == b"# app-1.0.0"
        again.rotate(grant)
        assert grant.token.value != issued
        assert again.fetch(grant, NOTES).status_code == 200
        # The continuation still works, and still respects "wait".
        clock.advance(grant.wait)
        again.poll(grant)
        assert again.fetch(grant, NOTES).status_code == 200
        again.finish(grant)
    with restarted(settings, clock) as http:
        again = GnapClient(http, grant_endpoint=f"{BASE}/gnap", key=scheduler_key,
                           instance_id="st-mary", clock=clock)
        clock.advance(grant.wait)
        with pytest.raises(GnapClientError) as refused:
            again.poll(grant)
        assert refused.value.code == "invalid_continuation"  # revoked before the restart


def test_a_signed_grant_request_cannot_be_replayed_after_a_restart(
    vendor: TestClient, client: GnapClient, settings: VendorSettings, clock: ManualClock,
    rollout: Rollout,
) -> None:
    url = f"{BASE}/gnap"
    body = json.dumps({"client": "st-mary", "access_token": {"access": rollout()}}).encode()
    headers = sign_request(client.key, "POST", url, {"Content-Type": "application/json"}, body,
                           clock=clock)
    assert vendor.post(url, content=body, headers=headers).status_code == 200
    clock.advance(5)
    with restarted(settings, clock) as http:
        replay = http.post(url, content=body, headers=headers)
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "invalid_client"
        assert "replayed" in replay.json()["error"]["description"]


def test_a_signed_fetch_cannot_be_replayed_after_a_restart(
    vendor: TestClient, client: GnapClient, settings: VendorSettings, clock: ManualClock,
    rollout: Rollout,
) -> None:
    grant = client.request_grant(rollout())
    headers = sign_request(client.key, "GET", NOTES, {"Authorization": f"GNAP {grant.token.value}"},
                           clock=clock)
    assert vendor.get(NOTES, headers=headers).status_code == 200
    with restarted(settings, clock) as http:
        replay = http.get(NOTES, headers=headers)
        assert (replay.status_code, replay.json()["error"]["code"]) == (401, "invalid_signature")


def test_seen_nonces_expire_with_their_window(
    vendor: TestClient, client: GnapClient, clock: ManualClock, rollout: Rollout
) -> None:
    server = vendor.app.state.authorization  # type: ignore[attr-defined]
    for _ in range(3):
        client.request_grant(rollout())
    assert server.nonces.remembered() == 3
    clock.advance(3600)
    client.request_grant(rollout())
    assert server.nonces.remembered() == 1  # the old ones were purged
