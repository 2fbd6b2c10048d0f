"""The operator UI serves the scheduler's own tenant: an operator of a hospital tenant of the
vendor-run scheduler is refused at sign-in with the reason (it works through the API and the
CLI, scoped to its tenant), and no session is left behind."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sched_world import ADMIN, World
from sqlalchemy import select
from suture.scheduler.models import ApiToken
from suture.scheduler.services import operators, tenants
from suture.scheduler.ui.session import SESSION_COOKIE
from ui_accounts import PASSWORD


def test_a_tenants_operator_is_refused_at_sign_in(ui_client: TestClient,
                                                 ui_world: World) -> None:
    now = ui_world.clock.now()
    provider = ui_world.op(ADMIN)
    tenants.add_tenant(ui_world.session(), name="st-mary", display_name="St Mary's",
                       mode=tenants.VENDOR_RUN_MODE, actor=provider, now=now)
    operators.add_operator(ui_world.session(), name="mary", roles=["viewer"],
                           password=PASSWORD, actor=provider, now=now, tenant="st-mary",
                           mode=tenants.VENDOR_RUN_MODE)
    page = ui_client.get("/signin")
    token = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert token is not None
    r = ui_client.post("/signin", data={"name": "mary", "password": PASSWORD,
                                        "signin_token": token.group(1), "next": "/fleet"})
    assert r.status_code == 403
    assert "operator of tenant st-mary" in r.text
    assert SESSION_COOKIE not in ui_client.cookies
    with ui_world.session() as s:
        issued = s.execute(select(ApiToken).where(ApiToken.operator == "mary")).scalars().all()
    assert [t.revoked_at for t in issued] == [now]  # the sign-in's token is revoked at once
