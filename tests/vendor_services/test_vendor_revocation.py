"""Revocation ends access at once: removing a client, revoking a grant or a token is seen by
the AS and by the repository on the next request, whatever the introspection cache holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from suture.cli.main import app as suture_app
from suture.vendor_services.clock import ManualClock
from suture.vendor_services.gnap.client import GnapClient, GnapClientError, GrantState
from suture.vendor_services.gnap.clients import Registry
from suture.vendor_services.settings import VendorSettings
from typer.testing import CliRunner

Rollout = Callable[..., list[dict[str, Any]]]
NOTES = "http://testserver/releases/app-1.0.0/notes"


def refused(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(GnapClientError) as error:
        call()
    return error.value.status, error.value.code


def _everything_refused(client: GnapClient, grant: GrantState, clock: ManualClock,
                        rollout: Rollout) -> None:
    assert refused(lambda: client.fetch(grant, NOTES)) == (401, "invalid_token")
    assert refused(lambda: client.rotate(grant))[1] == "invalid_rotation"
    clock.advance(grant.wait)
    assert refused(lambda: client.poll(grant)) == (401, "invalid_continuation")
    assert refused(lambda: client.modify(grant, rollout())) == (401, "invalid_continuation")
    assert refused(lambda: client.request_grant(rollout())) == (401, "invalid_client")


def test_client_remove_ends_access_at_once(
    vendor: TestClient, client: GnapClient, settings: VendorSettings, clock: ManualClock,
    rollout: Rollout,
) -> None:
    grant = client.request_grant(rollout())
    assert client.fetch(grant, NOTES).status_code == 200  # the RS now caches the answer
    result = CliRunner().invoke(suture_app, ["vendor", "client", "remove", "st-mary",
                                             "--data", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "1 grant revoked" in result.output
    _everything_refused(client, grant, clock, rollout)


def test_a_client_gone_from_clients_json_has_no_access(
    vendor: TestClient, client: GnapClient, settings: VendorSettings, clock: ManualClock,
    rollout: Rollout,
) -> None:
    grant = client.request_grant(rollout())
    assert client.fetch(grant, NOTES).status_code == 200
    # Edited by other means than `suture vendor client remove`: the AS still notices.
    Registry.load(settings.registry_path).remove_client("st-mary")
    _everything_refused(client, grant, clock, rollout)


def test_a_revoked_grant_is_not_served_from_the_cache(
    client: GnapClient, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    assert client.fetch(grant, NOTES).status_code == 200
    client.revoke_grant(grant)
    assert refused(lambda: client.fetch(grant, NOTES)) == (401, "invalid_token")


def test_a_revoked_token_is_not_served_from_the_cache(
    client: GnapClient, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    assert client.fetch(grant, NOTES).status_code == 200
    client.revoke_token(grant)
    assert refused(lambda: client.fetch(grant, NOTES)) == (401, "invalid_token")


def test_other_clients_keep_their_access(
    vendor: TestClient, client: GnapClient, settings: VendorSettings, rollout: Rollout
) -> None:
    grant = client.request_grant(rollout())
    result = CliRunner().invoke(suture_app, ["vendor", "client", "remove", "nobody",
                                             "--data", str(settings.data_dir)])
    assert result.exit_code == 1
    assert client.fetch(grant, NOTES).status_code == 200
