"""schemathesis over the DDI routes: generated requests from a device with a valid target token,
in a running rollout (so that its action, its artefact and its history exist), never get a
5xx, and the 2xx answers match their published schemas."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from sched_world import AUDIT_KEY, World
from sqlalchemy import Engine
from suture.keys import PrivateKey
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_session_factory
from suture.scheduler.ddi import service
from suture.scheduler.services.schedules import ScheduleContext

EXAMPLES = 12


def test_ddi_routes_never_fail_on_generated_requests(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock, ctx: ScheduleContext,
        scheduler_key: PrivateKey, vendor_key: PrivateKey, tmp_path: Path,
        figures: object) -> None:
    world = World(make_session_factory(sqlite_engine, audit_key=AUDIT_KEY), clock, ctx,
                  scheduler_key, vendor_key, tmp_path)
    world.device("dev-0")
    token = service.issue_target_token(world.session(), device_id="dev-0", tenant="DEFAULT",
                                       kind="linux", actor=world.alice, now=clock.now())
    rollout = world.rollout(world.release(2).id)
    world.start(rollout.id)
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    headers = {"Authorization": f"TargetToken {token}"}
    with TestClient(app) as client:
        poll = client.get("/DEFAULT/controller/v1/dev-0", headers=headers).json()
        assert "deploymentBase" in poll["_links"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [schemathesis.checks.not_a_server_error,
              schemathesis.checks.response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    ddi = [op for op in operations if op.path.startswith("/{tenant}/controller/v1/")]
    assert len(ddi) == 11
    calls = 0
    for operation in ddi:

        @given(case=operation.as_strategy())
        @examples(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            # This device, under its tenant: the rest of the request is generated.
            case.path_parameters = {**(case.path_parameters or {}), "tenant": "DEFAULT",
                                    "controller_id": "dev-0"}
            case.call_and_validate(headers=headers, checks=checks)

        fuzz()
    figures("DDI schemathesis operations x requests", f"{len(ddi)} x {calls}")  # type: ignore[operator]
