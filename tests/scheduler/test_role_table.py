"""Every operation of the published OpenAPI document, for every role: allowed or refused exactly
as the table below says. The table is written out here, independently of the code's role
table: an operation missing from it, or a role that may do more or less than it says, fails.

Each request carries a fresh token of an account that holds one role only (or none), so that
an allowed logout or token revocation ends nothing else. A refused request is ``403`` (its body
unread); an allowed one is anything but ``401`` and ``403`` (a ``404``, ``409`` or ``422`` says
the request went past the role check). Without a token, every operator operation is ``401``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sched_world import Api, World
from suture.scheduler.api.operator_route import AUTHENTICATED, PERMISSION_KEY
from suture.scheduler.authz import ROLE_PERMISSIONS, Permission, Principal, Role
from suture.scheduler.services import operators

ALL = frozenset(Role)
#: Every role sees the fleet but the administrator, who manages accounts only.
READERS = ALL - {Role.ADMINISTRATOR}
DEVICE = "device"  # a device's request (its own HMAC scheme): operator tokens get 401
PUBLIC = "public"  # no operator token needed

D, REL, RO = Role.DEVICE_MANAGER, Role.RELEASE_MANAGER, Role.ROLLOUT_OPERATOR
APP, AUD, ADM = Role.APPROVER, Role.AUDITOR, Role.ADMINISTRATOR

#: hawkBit's DDI API (its own token schemes): operator tokens get 401.
_DDI = "/{tenant}/controller/v1/{controller_id}"

EXPECTED: dict[tuple[str, str], frozenset[Role] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("GET", "/api/v1/devices/{device_id}/schedule"): DEVICE,
    ("POST", "/api/v1/devices/{device_id}/reports"): DEVICE,
    ("POST", "/api/v1/devices/{device_id}/suit-reports"): DEVICE,
    ("GET", "/api/v1/releases/{release_id}/{kind}"): DEVICE,
    ("GET", "/api/v1/releases/{release_id}/deltas/{delta_id}/{kind}"): DEVICE,
    ("GET", "/api/v1/rollouts/{rollout_id}/hospital-envelope"): DEVICE,
    ("GET", _DDI): DEVICE,
    ("GET", _DDI + "/deploymentBase/{action_id}"): DEVICE,
    ("POST", _DDI + "/deploymentBase/{action_id}/feedback"): DEVICE,
    ("GET", _DDI + "/installedBase/{action_id}"): DEVICE,
    ("GET", _DDI + "/cancelAction/{action_id}"): DEVICE,
    ("POST", _DDI + "/cancelAction/{action_id}/feedback"): DEVICE,
    ("PUT", _DDI + "/configData"): DEVICE,
    ("GET", _DDI + "/confirmationBase"): DEVICE,
    ("GET", _DDI + "/confirmationBase/{action_id}"): DEVICE,
    ("POST", _DDI + "/confirmationBase/{action_id}/feedback"): DEVICE,
    ("GET", _DDI + "/softwaremodules/{release_id}/artifacts/{filename}"): DEVICE,
    ("GET", "/api/v1/auth/whoami"): ALL,
    ("POST", "/api/v1/auth/logout"): ALL,
    ("POST", "/api/v1/auth/password"): ALL,
    ("GET", "/api/v1/tokens"): ALL,
    ("POST", "/api/v1/tokens"): ALL,
    ("DELETE", "/api/v1/tokens/{token_id}"): ALL,
    ("GET", "/api/v1/operators"): frozenset({ADM, AUD}),
    ("POST", "/api/v1/operators"): frozenset({ADM}),
    ("GET", "/api/v1/operators/{name}"): frozenset({ADM, AUD}),
    ("PATCH", "/api/v1/operators/{name}"): frozenset({ADM}),
    ("POST", "/api/v1/operators/{name}/password"): frozenset({ADM}),
    ("POST", "/api/v1/operators/{name}/tokens"): frozenset({ADM}),
    ("GET", "/api/v1/devices"): READERS,
    ("POST", "/api/v1/devices"): frozenset({D}),
    ("GET", "/api/v1/devices/{device_id}"): READERS,
    ("GET", "/api/v1/devices/{device_id}/suit-reports"): READERS,
    ("PATCH", "/api/v1/devices/{device_id}"): frozenset({D}),
    ("POST", "/api/v1/devices/{device_id}/credential"): frozenset({D}),
    ("POST", "/api/v1/devices/{device_id}/decommission"): frozenset({D}),
    ("POST", "/api/v1/devices/{device_id}/ddi-token"): frozenset({D}),
    ("POST", "/api/v1/ddi/tenants/{tenant}/gateway-token"): frozenset({D}),
    ("GET", "/api/v1/releases"): READERS,
    ("POST", "/api/v1/releases"): frozenset({REL}),
    ("GET", "/api/v1/releases/{release_id}"): READERS,
    ("GET", "/api/v1/releases/{release_id}/sbom"): READERS,
    ("GET", "/api/v1/releases/{release_id}/sbom/diff"): READERS,
    ("PATCH", "/api/v1/releases/{release_id}"): frozenset({REL}),
    ("POST", "/api/v1/releases/{release_id}/recall"): frozenset({REL}),
    ("GET", "/api/v1/releases/{release_id}/deltas"): READERS,
    ("POST", "/api/v1/releases/{release_id}/deltas"): frozenset({REL}),
    ("GET", "/api/v1/rollouts"): READERS,
    ("POST", "/api/v1/rollouts"): frozenset({RO}),
    ("GET", "/api/v1/rollouts/{rollout_id}"): READERS,
    ("PATCH", "/api/v1/rollouts/{rollout_id}"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/{rollout_id}/approve"): frozenset({APP}),
    ("POST", "/api/v1/rollouts/{rollout_id}/deny"): frozenset({APP}),
    ("POST", "/api/v1/rollouts/{rollout_id}/start"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/{rollout_id}/pause"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/{rollout_id}/resume"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/{rollout_id}/vendor-grant"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/{rollout_id}/abort"): frozenset({RO}),
    ("POST", "/api/v1/rollouts/advance"): frozenset({RO}),
    ("GET", "/api/v1/audit"): frozenset({AUD}),
    ("GET", "/api/v1/audit/verify"): frozenset({AUD}),
    ("GET", "/api/v1/audit/export"): frozenset({AUD}),
    ("POST", "/api/v1/audit/checkpoint"): frozenset({AUD}),
    ("GET", "/api/v1/scheduler"): READERS,
    ("POST", "/api/v1/trust/rotations"): frozenset({REL}),
    ("GET", "/api/v1/trust/rotations"): READERS,
    ("GET", "/api/v1/trust/devices"): READERS,
}


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client.get("/openapi.json").json()
    return [(method.upper(), path, op) for path, ops in doc["paths"].items()
            for method, op in ops.items()]


def test_the_table_covers_every_operation_and_matches_the_document(api: Api) -> None:
    ops = _operations(api.client)
    assert {(m, p) for m, p, _ in ops} == set(EXPECTED)
    for method, path, op in ops:
        expected = EXPECTED[(method, path)]
        declared = op.get(PERMISSION_KEY)
        if isinstance(expected, str):
            assert declared is None, (method, path)
        elif expected == ALL:
            assert declared == AUTHENTICATED, (method, path)
        else:
            granted = {r for r in Role if Permission(declared) in ROLE_PERMISSIONS[r]}
            assert granted == expected, (method, path, declared)


def _url(path: str, target_token: int) -> str:
    return (path.replace("{device_id}", "pump-1").replace("{release_id}", "1")
            .replace("{rollout_id}", "1").replace("{name}", "target").replace("{kind}", "payload")
            .replace("{token_id}", str(target_token)).replace("{tenant}", "DEFAULT")
            .replace("{controller_id}", "pump-1").replace("{action_id}", "1")
            .replace("{delta_id}", "1")
            .replace("{filename}", "app-2.bin"))


@pytest.fixture
def table_world(world: World, api: Api) -> tuple[World, int]:
    """A device, a release and a rollout to act on, an account "target" with a token to act
    on, and one account per role (and one with none)."""
    world.device("pump-1")
    ro = world.rollout(world.release(2).id)
    assert ro.id == 1
    admin = world.op("root")
    operators.add_operator(world.session(), name="target", roles=[], password=None,
                           actor=admin, now=world.clock.now())
    issued = operators.issue_token(world.session(), operator="target", name="t", ttl_s=3600,
                                   actor=admin, now=world.clock.now())
    for role in Role:
        operators.add_operator(world.session(), name=f"only-{role.value}", roles=[role.value],
                               password=None, actor=admin, now=world.clock.now())
    operators.add_operator(world.session(), name="no-role", roles=[], password=None,
                           actor=admin, now=world.clock.now())
    return world, issued.id


def _fresh_token(world: World, account: str, admin: Principal) -> str:
    return operators.issue_token(world.session(), operator=account, name="table", ttl_s=3600,
                                 actor=admin, now=world.clock.now()).token


def test_every_operation_for_every_role(table_world: tuple[World, int], api: Api,
                                        figures: object) -> None:
    world, target_token = table_world
    admin = world.op("root")
    checked = 0
    for method, path, _ in _operations(api.client):
        expected = EXPECTED[(method, path)]
        url = _url(path, target_token)
        body = {} if method in ("POST", "PATCH") else None
        if expected != PUBLIC:
            anonymous = api.client.request(method, url, json=body)
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        for account, role in [*((f"only-{r.value}", r) for r in Role), ("no-role", None)]:
            headers = {"Authorization": f"Bearer {_fresh_token(world, account, admin)}"}
            r = api.client.request(method, url, json=body, headers=headers)
            if expected == PUBLIC:
                assert r.status_code not in (401, 403), (method, path, account, r.text)
            elif expected == DEVICE:
                assert r.status_code == 401, (method, path, account, r.text)
            elif expected == ALL or (role is not None and role in expected):
                assert r.status_code not in (401, 403), (method, path, account, r.text)
            else:
                assert r.status_code == 403, (method, path, account, r.text)
                assert r.json()["error"] == "forbidden"
            checked += 1
    figures("operations x accounts checked", checked)  # type: ignore[operator]
    assert checked == len(EXPECTED) * (len(Role) + 1)
