"""The Releases page mirrors a release from a vendor of the vendors file, through the same
service as `suture scheduler vendor mirror`, against the vendor's services on loopback
(uvicorn): a mirrored release is listed; a refusal shows the vendor's reason and keeps
nothing; a viewer is refused; without a vendors file the form says how to configure one."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sched_world import AUDIT_KEY, CLASS_ID, VENDOR_ID, World
from sqlalchemy import Engine, func, select
from suture.keys import PrivateKey, write_key_pair
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.models import AuditRecord, Release
from suture.scheduler.ui.session import CSRF_FIELD
from suture.scheduler.vendor_mirror import VendorEntry, save_vendors
from suture.suit.sbom_build import build_sbom
from suture.vendor_services.gnap.clients import RegisteredClient, Registry
from suture.vendor_services.httpsig import SigningKey
from suture.vendor_services.repository.publish import ReleaseFiles, publish_release
from suture.vendor_services.repository.store import ReleaseStore
from suture.vendor_services.settings import VendorSettings
from test_ui_pages import sign_in
from vendor_loopback import free_port, serving


def _publish(settings: VendorSettings, key: PrivateKey, src: Path, release_id: str,
             seq: int, delta_from: tuple[str, ...] = ()) -> None:
    base = src / release_id
    base.mkdir(parents=True)
    data = f"pump app #{seq}\n".encode() * 64
    (base / "app.bin").write_bytes(data)
    (base / "release.json").write_text(json.dumps({
        "sequence-number": seq, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
        "components": [{"id": ["app"], "file": "app.bin", "uri": "https://vendor.example/app"}]}))
    (base / "sbom.json").write_bytes(build_sbom("pump-app", str(seq), {"app.bin": data}))
    (base / "notes.md").write_text(f"# {release_id}\n")
    publish_release(ReleaseStore(settings.releases_dir), release_id,
                    ReleaseFiles(base / "release.json", base / "sbom.json", base / "notes.md"),
                    key, published_at=int(time.time()), delta_from=delta_from)


@pytest.fixture
def vendors_file(tmp_path: Path, ui_vendor_key: PrivateKey) -> Iterator[Path]:
    """A vendor on loopback that lets the scheduler ("st-mary") mirror its ``pump-*``
    releases, with ``pump-6`` and ``pump-7`` (and a delta of it from ``pump-6``) published
    signed by the UI tests' vendor key; the scheduler's vendors file naming it ``acme``."""
    port = free_port()
    settings = VendorSettings(data_dir=tmp_path / "vendor", public_url=f"http://127.0.0.1:{port}")
    settings.data_dir.mkdir()
    client_key = SigningKey.generate("EdDSA")
    Registry.load(settings.registry_path).add_client(RegisteredClient(
        instance_id="st-mary", jwk=client_key.jwk(), name="St Mary's", releases=["pump-*"],
        max_devices=10))
    _publish(settings, ui_vendor_key, tmp_path / "vendor-src", "pump-6", 6)
    _publish(settings, ui_vendor_key, tmp_path / "vendor-src", "pump-7", 7, ("pump-6",))
    _publish(settings, ui_vendor_key, tmp_path / "vendor-src", "other-8", 8)
    client_pem = tmp_path / "gnap-client.pem"
    client_pem.write_bytes(client_key.to_pem())
    anchor = tmp_path / "acme-signing.pem"
    write_key_pair(ui_vendor_key, anchor)
    path = tmp_path / "vendors.json"
    save_vendors(path, {"acme": VendorEntry(
        name="acme", repository_url=settings.releases_url, as_uri=settings.grant_endpoint,
        client_key=str(client_pem), trust_anchors=(str(tmp_path / "acme-signing.pub.pem"),),
        instance_id="st-mary")})
    with serving(settings, port):
        yield path


def _client(engine: Engine, settings: Settings, clock: ManualClock) -> TestClient:
    return TestClient(create_app(settings, clock=clock, engine=engine, audit_key=AUDIT_KEY),
                      follow_redirects=False)


def _count(world: World, model: type) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _refusal(page: str) -> str:
    found = re.search(r'id="mirror-error"><span aria-hidden="true">✖</span> ([^<]*)</p>', page)
    return found.group(1) if found else ""


def _mirror_form(csrf: str, release: str, zone: str = "UTC") -> dict[str, str]:
    """The form for a rollout of two pumps from now (the vendor's clock) for two days, in the
    hospital's time zone."""
    now = datetime.now(ZoneInfo(zone))
    return {CSRF_FIELD: csrf, "vendor": "acme", "release": release, "devices": "pump-1, pump-2",
            "start": now.strftime("%Y-%m-%dT%H:%M"),
            "end": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")}


@pytest.mark.slow
def test_mirror_from_a_vendor_on_loopback(ui_engine: Engine, ui_settings: Settings,
                                          ui_clock: ManualClock, ui_world: World,
                                          vendors_file: Path) -> None:
    settings = ui_settings.model_copy(update={"vendors_path": vendors_file,
                                              "vendor_check_interval_s": 0.0})
    with _client(ui_engine, settings, ui_clock) as client:
        csrf = sign_in(client, ui_world, "alice")
        form = client.get("/releases/import").text
        assert 'action="/releases/mirror"' in form
        assert '<option value="acme" selected>acme (http://127.0.0.1:' in form
        audit_before = _count(ui_world, AuditRecord)
        zone = settings.time_zone

        # the vendor refuses a release it does not let this scheduler have: its reason is
        # shown, nothing is kept
        r = client.post("/releases/mirror", data=_mirror_form(csrf, "other-8", zone))
        assert r.status_code == 400
        assert _refusal(r.text) == ("Not mirrored: other-8: the vendor refused: HTTP 403 "
                                    "request_denied: release &#39;other-8&#39; is not granted "
                                    "to you")
        assert 'value="other-8"' in r.text
        assert "pump-1, pump-2" in r.text
        # a release the vendor does not have
        r = client.post("/releases/mirror", data=_mirror_form(csrf, "pump-404", zone))
        assert r.status_code == 400
        assert _refusal(r.text) == ("Not mirrored: pump-404: the vendor refused: HTTP 403 "
                                    "request_denied: no published release &#39;pump-404&#39;")
        # a window the vendor finds over
        r = client.post("/releases/mirror", data={**_mirror_form(csrf, "pump-7", zone),
                                                  "start": "2026-01-01T22:00",
                                                  "end": "2026-01-08T06:00"})
        assert _refusal(r.text) == ("Not mirrored: pump-7: the vendor refused: HTTP 403 "
                                    "request_denied: the rollout window has already ended")
        # a vendor that is not in the vendors file
        r = client.post("/releases/mirror", data={**_mirror_form(csrf, "pump-7", zone),
                                                  "vendor": "globex"})
        assert (r.status_code, "no vendor &#39;globex&#39; in the vendors file" in r.text) == (
            400, True)
        assert (_count(ui_world, Release), _count(ui_world, AuditRecord)) == (0, audit_before)

        # without the CSRF token: refused
        form_data = _mirror_form(csrf, "pump-7", zone)
        del form_data[CSRF_FIELD]
        assert client.post("/releases/mirror", data=form_data).status_code == 403

        r = client.post("/releases/mirror", data=_mirror_form(csrf, "pump-7", zone))
        assert r.status_code == 303, r.text
        with ui_world.session() as s:
            release = s.execute(select(Release)).scalar_one()
            assert (release.component, release.sequence_number, release.vendor,
                    release.vendor_release, release.imported_by) == (
                "app", 7, "acme", "pump-7", "alice")
            actions = list(s.execute(select(AuditRecord.action).order_by(AuditRecord.seq)
                                     ).scalars())[audit_before:]
        assert r.headers["location"] == f"/releases/{release.id}"
        assert "release.import" in actions
        # its delta from pump-6 could not be imported (no pump-6 here): the page says why
        assert "release.delta.skipped" in actions
        page = client.get(r.headers["location"]).text
        assert "None: every device downloads the full payload." in page
        skipped = re.search(r'<ul id="deltas-not-imported"><li>(.*?)</li></ul>', page)
        assert skipped is not None
        assert skipped.group(1).startswith("skipped: the delta from the vendor's pump-6 (<time")
        assert "): no earlier release here has its source image" in skipped.group(1)
        listed = client.get("/releases").text
        assert f'<a href="/releases/{release.id}">{release.id}</a>' in listed

        # a viewer has neither the form nor the action
        csrf = sign_in(client, ui_world, "vera")
        assert client.get("/releases/import").status_code == 403
        r = client.post("/releases/mirror", data=_mirror_form(csrf, "pump-7", zone))
        assert r.status_code == 403
        assert _count(ui_world, Release) == 1


def test_without_vendors_the_form_says_how_to_configure_one(ui_client: TestClient,
                                                           ui_world: World) -> None:
    csrf = sign_in(ui_client, ui_world, "alice")
    page = ui_client.get("/releases/import").text
    assert 'action="/releases/mirror"' not in page
    assert "No vendor to mirror from." in page
    assert "names no vendors file" in page
    assert "docs/vendor.md" in page
    r = ui_client.post("/releases/mirror", data=_mirror_form(csrf, "pump-7"))
    assert r.status_code == 400
    assert "Not mirrored: This scheduler names no vendors file" in r.text
    assert _count(ui_world, Release) == 0


@pytest.mark.slow
def test_a_mirrored_delta_is_listed_on_its_release(ui_engine: Engine, ui_settings: Settings,
                                                   ui_clock: ManualClock, ui_world: World,
                                                   vendors_file: Path) -> None:
    """Mirrored after the release it starts from, a release's delta is imported with it, and
    its page lists it (source release, patch size) and nothing as not imported."""
    settings = ui_settings.model_copy(update={"vendors_path": vendors_file,
                                              "vendor_check_interval_s": 0.0})
    with _client(ui_engine, settings, ui_clock) as client:
        csrf = sign_in(client, ui_world, "alice")
        ids = []
        for release in ("pump-6", "pump-7"):
            r = client.post("/releases/mirror",
                            data=_mirror_form(csrf, release, settings.time_zone))
            assert r.status_code == 303, r.text
            ids.append(int(r.headers["location"].rsplit("/", 1)[1]))
        page = client.get(f"/releases/{ids[1]}").text
        row = re.search(r'<table class="grid" id="deltas">.*?<tbody><tr>(.*?)</tr>', page,
                        re.DOTALL)
        assert row is not None
        cells = re.findall(r"<td>(.*?)</td>", row.group(1))
        assert cells[1] == f'<a href="/releases/{ids[0]}">{ids[0]}</a> (#6)'
        assert re.fullmatch(r"\d+ bytes", cells[2])
        assert 'id="deltas-not-imported"' not in page
        assert "None: every device downloads" in client.get(f"/releases/{ids[0]}").text
