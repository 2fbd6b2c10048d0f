"""What the release, plan and live pages show, without a browser: a release's manifest read
(components by name, digests, sequence number, signer, text), its verification against the
anchors in force now and its SBOM licences; the plan's waves and each device's
must-pass-through path; the live view's busy deferrals; a recall confirmed first."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sched_world import CLASS_ID, VENDOR_ID, World
from sqlalchemy import text
from suture import suit
from suture.keys import PrivateKey, generate_private_key, key_id, write_key_pair
from suture.scheduler.services import releases
from suture.scheduler.ui.session import CSRF_FIELD
from suture.suit.sbom_build import build_sbom
from test_ui_pages import sign_in


def _release_with_text(world: World, key: PrivateKey, base: Path) -> tuple[int, bytes]:
    """Release app #4 whose manifest carries text; (its id, its payload)."""
    payload = b"pump app 4 with text\n" * 40
    (base / "app-4.bin").write_bytes(payload)
    (base / "app-4.cdx.json").write_bytes(build_sbom("app", "4", {"app-4.bin": payload}))
    envelope = suit.create_envelope({
        "sequence-number": 4, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
        "text": {"manifest-description": "Infusion pump firmware 4, night build"},
        "components": [{"id": ["app"], "file": "app-4.bin", "uri": "https://vendor.example/a4",
                        "text": {"model-name": "P-100 infusion pump"}}],
        "sbom": "app-4.cdx.json"}, key, base_dir=base)
    release = releases.import_release(
        world.session(), envelope=envelope, payload=payload,
        sbom=(base / "app-4.cdx.json").read_bytes(), notes=None,
        trust_anchors=[key.public_key()], actor=world.alice, now=world.clock.now())
    return release.id, payload


def test_the_release_manifest_is_shown_readably(ui_client: TestClient, ui_world: World,
                                                ui_vendor_key: PrivateKey,
                                                tmp_path: Path) -> None:
    release_id, payload = _release_with_text(ui_world, ui_vendor_key, tmp_path)
    sign_in(ui_client, ui_world, "vera")
    page = ui_client.get(f"/releases/{release_id}").text
    manifest = page[page.index("<h2>SUIT manifest"):page.index("<h2>SBOM")]
    assert "<dt>Sequence number</dt><dd>4</dd>" in manifest
    assert "<code>[&#39;app&#39;]</code>" in manifest  # the component by its name, not hex
    assert hashlib.sha256(payload).hexdigest() in manifest  # the component's digest, whole
    digest = re.search(r"<dt>Manifest digest</dt><dd>sha-256 <code[^>]*>([0-9a-f]{64})</code>",
                       manifest)
    assert digest is not None
    assert "ES256" in manifest
    assert key_id(ui_vendor_key.public_key()).hex() in manifest  # the signer's anchor
    assert "Infusion pump firmware 4, night build" in manifest
    assert "P-100 infusion pump" in manifest
    assert "model name" in manifest
    sbom = page[page.index("<h2>SBOM"):]
    assert "licences: MIT" in sbom
    assert "Verified" in page

    # the vendor's key is replaced in the settings: the stored release no longer verifies
    rogue = generate_private_key("ES256")
    write_key_pair(rogue, tmp_path / "vendor-key.pem", force=True)  # the anchor the settings name
    page = ui_client.get(f"/releases/{release_id}").text
    assert "Not verified" in page
    assert "does not verify against the trust anchors now" in page
    assert "Infusion pump firmware 4, night build" in page  # still read, marked unverified


def test_the_plan_shows_waves_and_each_devices_path(ui_client: TestClient,
                                                    ui_world: World) -> None:
    ui_world.device("pump-1", installed={"app": 1})
    ui_world.device("pump-2", installed={"app": 2})
    ui_world.device("pump-3", installed={"app": 1}, criticality=4)
    stop = ui_world.release(2, must_pass_through=True)
    target = ui_world.release(3)
    csrf = sign_in(ui_client, ui_world, "alice")
    page = ui_client.post("/rollouts/preview", data={
        CSRF_FIELD: csrf, "name": "through 2", "release_id": str(target.id),
        "target_groups": "ward-3", "waves": "1, 100%"}).text
    assert "3 in 2 wave(s)" in page
    rows = dict(re.findall(r'<tr><th scope="row">(pump-\d)</th>(.*?)</tr>', page, re.S))
    assert set(rows) == {"pump-1", "pump-2", "pump-3"}
    for device, path in (("pump-1", "app #2 → app #3"), ("pump-3", "app #2 → app #3"),
                         ("pump-2", "app #3")):
        cells = re.findall(r"<td>(.*?)</td>", rows[device], re.S)
        assert cells[3] == path, (device, cells)
    waves = [int(re.findall(r"<td>(\d+)</td>", rows[d])[0]) for d in sorted(rows)]
    assert sorted(waves) == [1, 2, 2]  # one device in the first wave, the rest in the second
    waves_table = page[page.index("<h2>Waves"):page.index("<h2>Devices and the path")]
    assert re.search(r'<th scope="row">1</th><td>1</td>', waves_table)
    assert re.search(r'<th scope="row">2</th><td>2</td>', waves_table)
    assert "<strong>2</strong>" in page  # two approvals: pump-3 is critical
    assert str(stop.id) not in re.findall(r'href="/releases/(\d+)"', page)  # the target only


def test_the_live_view_shows_busy_deferrals(ui_client: TestClient, ui_world: World) -> None:
    busy = ui_world.device("pump-1")
    free = ui_world.device("pump-2")
    rid = ui_world.rollout(ui_world.release(2).id).id
    ui_world.start(rid)
    busy.report("idle", busy=True)
    for _ in range(4):  # it downloads and stages; its install waits while it is busy
        busy.follow()
        free.follow()
        ui_world.clock.advance(60)
    sign_in(ui_client, ui_world, "vera")
    live = ui_client.get(f"/rollouts/{rid}/live").text
    row = re.search(r'<a href="/fleet/pump-1">pump-1</a></th>(.*?)</tr>', live, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert cells[4].startswith("1 ") or cells[4].startswith("2 "), cells
    assert "◉</span> busy now</span>" in cells[4]
    assert "busy: install deferred" in row.group(1)
    other = re.search(r'<a href="/fleet/pump-2">pump-2</a></th>(.*?)</tr>', live, re.S)
    assert other is not None
    assert re.findall(r"<td>(.*?)</td>", other.group(1), re.S)[4] == "0"


def test_a_recall_is_confirmed_first(ui_client: TestClient, ui_world: World) -> None:
    ui_world.device("pump-1")
    release = ui_world.release(2)
    rid = ui_world.rollout(release.id, name="pumps to 2").id
    ui_world.start(rid)
    csrf = sign_in(ui_client, ui_world, "alice")
    assert f'href="/releases/{release.id}/recall"' in ui_client.get(f"/rollouts/{rid}").text
    confirm = ui_client.get(f"/releases/{release.id}/recall", params={"revert": "true"}).text
    assert f"Recall release {release.id}?" in confirm
    assert f"rollout {rid} (pumps to 2, running) would be aborted; its devices in trial " \
           "would revert" in confirm
    assert f'action="/releases/{release.id}/recall"' in confirm
    assert ui_world.status(rid).rollout.state == "running"  # asking changed nothing
    assert ui_client.post(f"/releases/{release.id}/recall",
                          data={"revert": "true"}).status_code == 403  # no CSRF token
    done = ui_client.post(f"/releases/{release.id}/recall",
                          data={CSRF_FIELD: csrf, "revert": "false"})
    assert (done.status_code, done.headers["location"]) == (303, f"/releases/{release.id}")
    assert ui_world.status(rid).rollout.state == "aborted"
    page = ui_client.get(f"/releases/{release.id}").text
    assert "Recalled" in page
    assert "Recall…" not in page
    assert "Roll it out" not in page


def test_the_audit_page_says_when_the_chain_does_not_verify(ui_client: TestClient,
                                                            ui_world: World) -> None:
    """Someone with database access rewrites a record: the page says the chain does not
    verify and names the first bad record (SQLite: the test's own copy, guards dropped)."""
    ui_world.device("pump-1")
    sign_in(ui_client, ui_world, "alice")
    assert "Chain verified" in ui_client.get("/audit").text
    with ui_world.session() as s, s.begin():
        for trigger in ("audit_log_no_update", "audit_log_append_at_end"):
            s.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        s.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    page = ui_client.get("/audit").text
    verdict = page[page.index('id="audit-verdict"'):page.index("</p>", page.index(
        'id="audit-verdict"'))]
    assert "Chain does NOT verify" in verdict
    assert "first bad record 3" in verdict
    assert 'class="verdict bad"' in page


def test_the_approvals_page_shows_the_plan_and_the_release(ui_client: TestClient,
                                                           ui_world: World) -> None:
    ui_world.device("pump-1", criticality=4)
    ui_world.device("pump-2")
    release = ui_world.release(2, must_pass_through=True)
    rid = ui_world.rollout(release.id, name="night pumps", waves=["1", "100%"],
                           target_filter="criticality >= 2",
                           window={"cron": "0 2 * * *", "duration_s": 7200,
                                   "tz": "Europe/Berlin"}).id
    sign_in(ui_client, ui_world, "bob")
    page = ui_client.get("/approvals").text
    card = page[page.index(f"Rollout {rid}: night pumps"):]
    assert f'<a href="/releases/{release.id}">app #2</a> (must pass through)' in card
    assert "2 in 2 wave(s); highest criticality 4 (critical)" in card
    assert "groups ward-3 filter <code>criticality &gt;= 2</code>" in card
    assert "<dt>Waves</dt><dd>1, 100%; oldest first; then pause past 20% errors" in card
    # the next night windows, in the hospital's zone (the clock is 01:00 CET)
    assert "2026-01-01 02:00 CET</time> – <time" in card
    assert "2026-01-01 04:00 CET" in card
    assert "2026-01-02 02:00 CET" in card
    assert f'<a href="/rollouts/{rid}">every device of rollout {rid}' in card
    assert "<strong>0 of 2</strong>" in card
    assert f"Approve rollout {rid} as bob" in card
