"""schemathesis against the published OpenAPI: generated requests for every operation, with a
valid token of an operator holding every role and seeded data, never get a 5xx; 2xx responses
match their schemas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sched_world import AUDIT_KEY, CLASS_ID, VENDOR_ID, make_release, release_upload
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from suture.keys import PrivateKey
from suture.scheduler.api.app import create_app
from suture.scheduler.authz import Principal, Role
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_session_factory
from suture.scheduler.services import operators

EXAMPLES = 15
# A SUIT report (docs/formats/suit-report.md) is binary, as application/octet-stream is.
schemathesis.serializer.alias("application/suit-report+cose", "application/octet-stream")


@dataclass
class Fuzzer:
    """The operator "fuzz" (every role), given a fresh token for each request: a fuzzed logout
    or revocation ends only its own."""

    sessions: sessionmaker[Session]
    admin: Principal
    clock: ManualClock

    def headers(self) -> dict[str, str]:
        issued = operators.issue_token(self.sessions(), operator="fuzz", name="fuzz",
                                       ttl_s=3600, actor=self.admin, now=self.clock.now())
        return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def seeded_app(sqlite_engine: Engine, settings: Settings, clock: ManualClock,
               vendor_key: PrivateKey, tmp_path: Path
               ) -> tuple[schemathesis.BaseSchema, Fuzzer]:
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    sessions = make_session_factory(sqlite_engine, audit_key=AUDIT_KEY)
    boot = operators.bootstrap_administrator(sessions(), name="root", password=None,
                                             now=clock.now())
    assert boot is not None
    admin = operators.authenticate_token(sessions(), token=boot.token, now=clock.now())
    operators.add_operator(sessions(), name="fuzz", roles=[r.value for r in Role],
                           password=None, actor=admin, now=clock.now())
    fuzzer = Fuzzer(sessions, admin, clock)
    auth = fuzzer.headers()
    with TestClient(app) as client:
        for i in range(3):
            r = client.post("/api/v1/devices", headers=auth, json={
                "id": f"dev-{i}", "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
                "groups": ["g"], "criticality": 2, "installed": {"app": 1}})
            assert r.status_code == 201

        r = client.post("/api/v1/releases", headers=auth,
                        json=release_upload(*make_release(vendor_key, tmp_path, 2)))
        assert r.status_code == 201
        r = client.post("/api/v1/rollouts", headers=auth, json={
            "name": "fuzzed", "release_id": 1, "target_groups": ["g"]})
        assert r.status_code == 201
    return schemathesis.openapi.from_asgi("/openapi.json", app), fuzzer


def test_no_server_errors(seeded_app: tuple[schemathesis.BaseSchema, Fuzzer],
                          figures: object) -> None:
    schema, fuzzer = seeded_app
    checks = [schemathesis.checks.not_a_server_error,
              schemathesis.checks.response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=fuzzer.headers(), checks=checks)

        fuzz()
    figures("schemathesis operations x requests", f"{len(operations)} x {calls}")  # type: ignore[operator]
