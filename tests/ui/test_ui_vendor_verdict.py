"""The vendor's say in the UI: the plan of a rollout of a vendor's release says the vendor must
grant it, the rollout's page shows the vendor's verdict (not asked, refused with the vendor's
reason, granted, changed since) before anyone approves or starts it, and the release's page
shows the vendor's metadata and recall."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sched_world import World
from suture.scheduler.schemas import RolloutUpdate
from suture.scheduler.services import rollouts, vendor_grants, vendor_releases
from suture.scheduler.services.vendor_grants import GrantAnswer, IssuedBiscuit
from suture.scheduler.ui.session import CSRF_FIELD
from test_ui_pages import sign_in


class Acme:
    """The vendor's AS as the scheduler sees it: refuses more than ``allowed`` devices."""

    name = "acme"
    location = "http://vendor.test/releases/"
    direct_url = ""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed

    def _judge(self, right: dict[str, Any]) -> GrantAnswer:
        count = right["rollout"]["count"]
        if count > self.allowed:
            return GrantAnswer(False, reason=f"{count} devices is more than the "
                                             f"{self.allowed} the vendor allows")
        return GrantAnswer(True, reference="http://vendor.test/gnap/continue/7",
                           continue_token="c", rights=right)

    def request(self, right: dict[str, Any]) -> GrantAnswer:
        return self._judge(right)

    def modify(self, reference: str, continue_token: str,
               right: dict[str, Any]) -> GrantAnswer:
        return self._judge(right)

    def poll(self, reference: str, continue_token: str) -> GrantAnswer:
        raise AssertionError("not polled here")

    def issue_biscuit(self, device_id: str, vendor_release: str, not_before: int,
                      expires_at: int) -> IssuedBiscuit:
        raise AssertionError("no direct downloads here")


def test_the_operator_sees_the_vendors_verdict_before_approving(
        ui_client: TestClient, ui_world: World) -> None:
    for name in ("pump-1", "pump-2"):
        ui_world.device(name)
    release = ui_world.release(2)
    now = ui_world.clock.now()
    vendor_releases.apply_metadata(
        ui_world.session(), release_id=release.id, vendor="acme", vendor_release="pump-2.0",
        metadata={"device_classes": ["sim"], "requires": [], "pass_through": [],
                  "criticality": "urgent", "criticality_note": "the occlusion alarm"},
        recall=None, actor="mirror", now=now)
    csrf = sign_in(ui_client, ui_world, "alice")
    preview = ui_client.post("/rollouts/preview", data={
        CSRF_FIELD: csrf, "name": "pumps", "release_id": str(release.id),
        "target_groups": "ward-3", "waves": "100%"})
    assert preview.status_code == 200, preview.text
    assert "a release of vendor acme" in preview.text
    shown = ui_client.get(f"/releases/{release.id}").text
    assert "<code>pump-2.0</code>" in shown
    assert "urgent: the occlusion alarm" in shown

    ro = ui_world.rollout(release.id, waves=["100%"]).id
    page = ui_client.get(f"/rollouts/{ro}").text
    assert "not asked" in page
    assert f"rollout grant {ro}" in page
    assert f"POST /api/v1/rollouts/{ro}/vendor-grant" in page

    def ask(allowed: int) -> None:
        vendor_grants.ask_vendor(ui_world.session(), rollout_id=ro, authority=Acme(allowed),
                                 actor=ui_world.alice, now=ui_world.clock.now())

    ask(1)
    page = ui_client.get(f"/rollouts/{ro}").text
    assert "refused</span> by acme: 2 devices is more than the 1 the vendor allows" in page
    assert "cannot start or resume until the vendor grants it" in page
    ask(2)
    page = ui_client.get(f"/rollouts/{ro}").text
    assert "granted</span> by acme (<code>http://vendor.test/gnap/continue/7</code>)" in page
    assert "cannot start" not in page
    # Changed beyond the grant (a later window): the page says the vendor must be asked again.
    rollouts.update_rollout(ui_world.session(), rollout_id=ro,
                            change=RolloutUpdate(deadline=now + 30 * 86_400),
                            actor=ui_world.alice, now=now)
    page = ui_client.get(f"/rollouts/{ro}").text
    assert "the rollout changed since</span> (a later window end)" in page

    ui_world.clock.advance(60)
    vendor_releases.apply_metadata(
        ui_world.session(), release_id=release.id, vendor="acme", vendor_release="pump-2.0",
        metadata={"device_classes": ["sim"], "requires": [], "pass_through": [],
                  "criticality": "urgent", "criticality_note": ""},
        recall={"recalled_at": now, "reason": "the alarm may not sound"}, actor="mirror",
        now=ui_world.clock.now())
    assert "Recalled by vendor acme" in ui_client.get(f"/releases/{release.id}").text
