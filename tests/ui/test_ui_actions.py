"""The UI's decisions and actions without a browser: an approver denies a rollout with a
reason (confirmed first) and approves with one, a device's credential is rotated (its secret
shown once) and a device decommissioned, each role-checked, CSRF-checked and audited; error
codes are shown with their meaning from the error-code table."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from markupsafe import escape
from sched_world import ROOT_SECRET, World, make_release
from sqlalchemy import func, select
from suture.formats import error_codes
from suture.formats.suit_report import CONTENT_TYPE, PROPERTY_COMMAND
from suture.keys import PrivateKey, generate_private_key
from suture.scheduler import credentials
from suture.scheduler.models import (
    AuditRecord,
    Device,
    Release,
    RolloutApproval,
    RolloutDenial,
)
from suture.scheduler.schemas import MAX_REASON, RolloutUpdate
from suture.scheduler.services import rollouts
from suture.scheduler.ui.session import CSRF_FIELD
from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.report import SuitRecord, encode_report, report_from_device
from test_ui_pages import sign_in


def _count(world: World, model: type) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _audit(world: World, action: str) -> list[dict[str, object]]:
    with world.session() as s:
        return [json.loads(d) for d in s.execute(
            select(AuditRecord.detail).where(AuditRecord.action == action)).scalars()]


def _rollout(world: World) -> int:
    world.device("pump-1", criticality=4)
    world.device("pump-2", criticality=2)
    return world.rollout(world.release(2).id).id


def test_deny_with_a_reason_then_change_and_approve(ui_client: TestClient,
                                                    ui_world: World) -> None:
    rid = _rollout(ui_world)
    csrf = sign_in(ui_client, ui_world, "bob")
    page = ui_client.get("/approvals").text
    assert f"Deny rollout {rid} as bob" in page
    assert f'action="/rollouts/{rid}/decide"' in page
    before = _count(ui_world, AuditRecord)
    # a denial needs a reason; a reason is bounded; neither changes anything
    for reason, message in (("  ", "needs a reason"), ("x" * (MAX_REASON + 1), "at most")):
        r = ui_client.post(f"/rollouts/{rid}/decide", data={
            CSRF_FIELD: csrf, "decision": "deny", "reason": reason, "back": "/approvals"})
        assert r.status_code == 422
        assert message in r.text
    # the confirmation shows the reason and changes nothing
    r = ui_client.post(f"/rollouts/{rid}/decide", data={
        CSRF_FIELD: csrf, "decision": "deny", "reason": "the night window is too short",
        "back": "/approvals"})
    assert r.status_code == 200
    assert f"Deny rollout {rid}?" in r.text
    assert "your reason: the night window is too short" in r.text
    assert _count(ui_world, RolloutDenial) == 0
    assert _count(ui_world, AuditRecord) == before
    # without the CSRF token the denial is refused
    assert ui_client.post(f"/rollouts/{rid}/deny", data={"reason": "x"}).status_code == 403
    r = ui_client.post(f"/rollouts/{rid}/deny", data={
        CSRF_FIELD: csrf, "reason": "the night window is too short", "back": "/approvals"})
    assert (r.status_code, r.headers["location"]) == (303, "/approvals")
    assert _audit(ui_world, "rollout.deny")[0]["reason"] == "the night window is too short"

    # carol sees the denial and is offered no approval; the API operation refuses it too
    csrf = sign_in(ui_client, ui_world, "carol")
    page = ui_client.get("/approvals").text
    assert "denied</span> by <strong>bob</strong>" in page
    assert "the night window is too short" in page
    assert f"Approve rollout {rid} as carol" not in page
    r = ui_client.post(f"/rollouts/{rid}/approve", data={CSRF_FIELD: csrf, "reason": "ok"})
    assert r.status_code == 409
    assert "denied by bob" in r.text
    csrf = sign_in(ui_client, ui_world, "alice")
    page = ui_client.get(f"/rollouts/{rid}").text
    assert "the night window is too short" in page
    assert "Start…" not in page  # a denied rollout is not started

    rollouts.update_rollout(ui_world.session(), rollout_id=rid,
                            change=RolloutUpdate(waves=["1", "100%"]), actor=ui_world.alice,
                            now=ui_world.clock.now())
    page = ui_client.get(f"/rollouts/{rid}").text
    assert "cleared when alice changed the rollout" in page
    for name, reason in (("bob", "two waves now"), ("carol", "")):
        csrf = sign_in(ui_client, ui_world, name)
        r = ui_client.post(f"/rollouts/{rid}/decide", data={
            CSRF_FIELD: csrf, "decision": "approve", "reason": reason})
        assert f"Approve rollout {rid}?" in r.text
        r = ui_client.post(f"/rollouts/{rid}/approve", data={CSRF_FIELD: csrf,
                                                             "reason": reason})
        assert (r.status_code, r.headers["location"]) == (303, f"/rollouts/{rid}")
    page = ui_client.get(f"/rollouts/{rid}").text
    assert "2 of 2" in page
    assert "bob counts: “two waves now”" in page
    assert [d["reason"] for d in _audit(ui_world, "rollout.approve")] == ["two waves now", ""]


def test_a_viewer_neither_denies_nor_rotates_nor_decommissions(ui_client: TestClient,
                                                              ui_world: World) -> None:
    rid = _rollout(ui_world)
    csrf = sign_in(ui_client, ui_world, "vera")
    for path, data in ((f"/rollouts/{rid}/deny", {"reason": "no"}),
                       (f"/rollouts/{rid}/decide", {"decision": "deny", "reason": "no"}),
                       ("/fleet/pump-1/rotate", {}), ("/fleet/pump-1/decommission", {})):
        r = ui_client.post(path, data={CSRF_FIELD: csrf, **data})
        assert r.status_code == 403, path
    for action in ("rotate", "decommission"):
        assert ui_client.get(f"/fleet/pump-1/confirm/{action}").status_code == 403
    page = ui_client.get("/fleet/pump-1").text
    assert "Decommission this device" not in page
    assert "Rotate the credential" not in page
    assert _count(ui_world, RolloutDenial) == 0
    assert _count(ui_world, RolloutApproval) == 0


def test_rotate_shows_the_new_secret_once(ui_client: TestClient, ui_world: World) -> None:
    ui_world.device("pump-1")
    csrf = sign_in(ui_client, ui_world, "alice")
    assert "Rotate the credential of this device" in ui_client.get("/fleet/pump-1").text
    confirm = ui_client.get("/fleet/pump-1/confirm/rotate")
    assert "stops working" in confirm.text
    assert "credential generation 1" in confirm.text
    assert not _audit(ui_world, "device.rotate_credential")  # asking changed nothing
    r = ui_client.post("/fleet/pump-1/rotate", data={CSRF_FIELD: csrf})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    secret = re.search(r'id="device-secret">([0-9a-f]{64})<', r.text)
    assert secret is not None
    assert bytes.fromhex(secret.group(1)) == credentials.derive_secret(ROOT_SECRET, "pump-1", 2)
    assert _audit(ui_world, "device.rotate_credential")[0]["generation"] == 2
    page = ui_client.get("/fleet/pump-1").text
    assert secret.group(1) not in page  # shown that once only
    assert credentials.fingerprint(bytes.fromhex(secret.group(1))) in page


def test_decommission_is_confirmed_with_a_reason(ui_client: TestClient,
                                                 ui_world: World) -> None:
    ui_world.device("pump-1")
    csrf = sign_in(ui_client, ui_world, "alice")
    confirm = ui_client.get("/fleet/pump-1/confirm/decommission").text
    assert "leaves service for good" in confirm
    assert 'name="reason"' in confirm
    too_long = ui_client.post("/fleet/pump-1/decommission",
                              data={CSRF_FIELD: csrf, "reason": "x" * 300})
    assert too_long.status_code == 422
    assert "at most 256" in too_long.text
    with ui_world.session() as s:
        assert s.get(Device, "pump-1").decommissioned_at is None  # type: ignore[union-attr]
    r = ui_client.post("/fleet/pump-1/decommission",
                       data={CSRF_FIELD: csrf, "reason": "broken screen"})
    assert (r.status_code, r.headers["location"]) == (303, "/fleet/pump-1")
    page = ui_client.get("/fleet/pump-1").text
    assert "Decommissioned" in page
    assert "broken screen" in page
    assert "Decommission this device" not in page
    assert _audit(ui_world, "device.decommission")


def test_error_codes_are_explained_from_the_table(ui_client: TestClient,
                                                  ui_world: World) -> None:
    """A failed install reports error 7: the live view and the device page say what 7 is, as
    the table says it (not a copy of it)."""
    pump = ui_world.device("pump-1")
    rid = ui_world.rollout(ui_world.release(2).id).id
    ui_world.start(rid)
    pump.update_fully(fail_install=True)
    sign_in(ui_client, ui_world, "alice")
    meaning = str(escape(error_codes.load().explain(7)))
    live = ui_client.get(f"/rollouts/{rid}/live").text
    assert "<dt>error 7</dt><dd>" + meaning in live
    device = ui_client.get("/fleet/pump-1").text
    assert device.count("<dt>error 7</dt><dd>" + meaning) == 2  # the entry and the report


def _files(envelope: bytes, payload: bytes, sbom: bytes) -> dict[str, tuple[str, bytes]]:
    return {"envelope": ("app.suit", envelope), "payload": ("app.bin", payload),
            "sbom": ("app.cdx.json", sbom)}


def test_a_release_is_imported_by_upload(ui_client: TestClient, ui_world: World,
                                         ui_vendor_key: PrivateKey, tmp_path: Path) -> None:
    """The form imports as the API does: verified, or refused with the reason on the form and
    nothing kept."""
    csrf = sign_in(ui_client, ui_world, "alice")
    assert 'href="/releases/import"' in ui_client.get("/releases").text
    assert 'enctype="multipart/form-data"' in ui_client.get("/releases/import").text
    envelope, payload, sbom = make_release(ui_vendor_key, tmp_path, 5)
    (tmp_path / "rogue").mkdir()
    rogue, rogue_payload, rogue_sbom = make_release(generate_private_key("ES256"),
                                                    tmp_path / "rogue", 6)
    before = _count(ui_world, AuditRecord)
    cases = [
        (_files(rogue, rogue_payload, rogue_sbom), "does not verify"),
        (_files(envelope, payload[:-1] + b"!", sbom), "digest"),
        ({"payload": ("app.bin", payload)}, "choose the SUIT envelope file"),
    ]
    for files, message in cases:
        r = ui_client.post("/releases/import", data={CSRF_FIELD: csrf, "notes": "kept"},
                           files=files)
        assert r.status_code in (409, 422), r.text
        assert "Not imported:" in r.text
        assert message in r.text
        assert ">kept</textarea>" in r.text  # the form keeps what was typed
    assert ui_client.post("/releases/import", files=_files(envelope, payload, sbom)
                          ).status_code == 403  # no CSRF token
    assert _count(ui_world, Release) == 0
    assert _count(ui_world, AuditRecord) == before
    r = ui_client.post("/releases/import", data={CSRF_FIELD: csrf, "notes": "night build",
                                                 "must_pass_through": "true"},
                       files=_files(envelope, payload, sbom))
    assert r.status_code == 303, r.text
    page = ui_client.get(r.headers["location"]).text
    assert "Verified" in page
    with ui_world.session() as s:
        (release,) = s.execute(select(Release)).scalars()
        assert (release.sequence_number, release.notes, release.must_pass_through) == (
            5, "night build", True)
    sign_in(ui_client, ui_world, "vera")
    assert ui_client.get("/releases/import").status_code == 403


def test_the_device_page_shows_its_suit_reports(ui_client: TestClient, ui_world: World) -> None:
    """A SUIT report the device sent (bare, under its request's MAC: the device has no key) is
    on its page: the manifest, the failing condition and where it failed, as the API shows it."""
    ui_world.device("pump-1")
    path = "/api/v1/devices/pump-1/suit-reports"
    manifest = digest_bytes(b"the manifest of release 2")
    report = report_from_device(
        {"state": "failed", "installed": {"app": 1}, "schedule_number": 1, "release_id": 2,
         "error": {"code": 31, "message": "staging: payload digest differs"}},
        manifest_digest=manifest, records=[],
        failed_at=SuitRecord((), cp.MANIFEST_INSTALL, 12, 0, {PROPERTY_COMMAND: 3}))
    body = encode_report(report)
    headers = credentials.sign_request(
        credentials.derive_secret(ROOT_SECRET, "pump-1", 1), method="POST", path=path,
        device_id="pump-1", time=ui_world.clock.now(), counter=1, body=body)
    ui_client.cookies.clear()
    r = ui_client.post(path, content=body, headers={**headers, "Content-Type": CONTENT_TYPE})
    assert r.status_code == 200, r.text
    sign_in(ui_client, ui_world, "alice")
    page = ui_client.get("/fleet/pump-1").text
    section = page[page.index("<h2>SUIT reports"):page.index("<h2>Reports and events")]
    assert manifest.value.hex()[:16] in section
    assert "31 condition-failed" in section
    assert "install+12 #0 condition-image-match" in section
    assert "none yet" not in section
