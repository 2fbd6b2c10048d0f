"""The fleet page's filters and the device page without a browser: each quick filter (group,
board, ward, installed version, state, criticality, last seen, busy) selects the devices the
CLI's filter language selects, shown as that expression; the live fragment filters alike; the
device page shows its versions, journal state, trust anchors, credential and its reports with
their error codes."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID, World
from suture.formats import error_codes
from suture.keys import PrivateKey, key_id
from suture.scheduler.filterexpr import compile_filter
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices
from test_ui_pages import sign_in

DAY = 86_400
_ROW = re.compile(r'<th scope="row"><a href="/fleet/([^"]+)">')
_APPLIED = re.compile(r"Filter applied: <code>([^<]*)</code>")


def _shown(page: str) -> set[str]:
    return set(_ROW.findall(page))


@pytest.fixture
def ward(ui_client: TestClient, ui_world: World) -> World:
    """pump-1: critical, ward-3, app 1, seen just now; pump-2: ward-4, app 5, busy, failed,
    seen two days ago; pump-3: another board, never seen; vera signed in."""
    pump1 = ui_world.device("pump-1", criticality=4, ward="ICU")
    pump2 = ui_world.device("pump-2", installed={"app": 5}, groups=("ward-4",), ward="ICU")
    devices.add_device(ui_world.session(), create=DeviceCreate(
        id="pump-3", board="rpi-pico", vendor_id=VENDOR_ID, class_id=CLASS_ID, criticality=1,
        groups=["ward-3"], ward="OR", installed={"app": 1}), root_secret=ROOT_SECRET,
        actor=ui_world.alice, now=ui_world.clock.now())
    pump2.poll()
    pump2.report("failed", busy=True, error={"code": 7, "message": "health check failed"})
    ui_world.clock.advance(2 * DAY)
    pump1.poll()
    sign_in(ui_client, ui_world, "vera")
    return ui_world


@pytest.mark.parametrize(("quick", "expected"), [
    ({}, {"pump-1", "pump-2", "pump-3"}),
    ({"group": "ward-4"}, {"pump-2"}),
    ({"board": "rpi-pico"}, {"pump-3"}),
    ({"ward": "ICU"}, {"pump-1", "pump-2"}),
    ({"installed_below": "app<3"}, {"pump-1", "pump-3"}),
    ({"state": "failed"}, {"pump-2"}),
    ({"state": "idle"}, {"pump-1", "pump-3"}),
    ({"criticality": "4"}, {"pump-1"}),
    ({"busy": "true"}, {"pump-2"}),
    ({"busy": "false"}, {"pump-1", "pump-3"}),
    ({"last_seen": "1h"}, {"pump-1"}),
    ({"last_seen": "24h"}, {"pump-1"}),
    ({"last_seen": "over-24h"}, {"pump-2", "pump-3"}),
    ({"last_seen": "over-7d"}, {"pump-3"}),
    ({"last_seen": "never"}, {"pump-3"}),
    ({"group": "ward-3", "last_seen": "over-24h"}, {"pump-3"}),
    ({"q": 'ward == "ICU" and not busy == true', "criticality": "3"}, {"pump-1"}),
])
def test_each_quick_filter_is_the_cli_language(ui_client: TestClient, ward: World,
                                               quick: dict[str, str], expected: set[str]
                                               ) -> None:
    page = ui_client.get("/fleet", params=quick)
    assert page.status_code == 200
    assert _shown(page.text) == expected
    assert f"{len(expected)} of 3 devices" in page.text
    live = ui_client.get("/fleet/live", params=quick).text
    assert _shown(live) == expected  # the live refresh keeps the filter
    applied = _APPLIED.search(page.text)
    if not quick:
        assert applied is None
        return
    assert applied is not None
    # the expression shown is the CLI's language, and selects the same devices through it
    expression = html.unescape(applied.group(1))
    with ward.session() as s:
        rows, _ = devices.list_devices(s)
    chosen = {d.id for d in rows if compile_filter(expression)(
        {k: getattr(d, k) for k in ("id", "board", "ward", "criticality", "groups", "installed",
                                    "state", "busy", "last_seen", "tags", "location")})}
    assert chosen == expected, expression


def test_the_last_seen_choices_are_offered(ui_client: TestClient, ward: World) -> None:
    page = ui_client.get("/fleet", params={"last_seen": "over-7d"}).text
    assert '<option value="over-7d" selected>not for a week or more</option>' in page
    assert f"not last_seen &gt;= {ward.clock.now() - 7 * DAY}" in page


def test_a_bad_filter_is_named_and_shows_no_device(ui_client: TestClient, ward: World) -> None:
    page = ui_client.get("/fleet", params={"q": "criticality >= \"urgent\""}).text
    assert "unknown criticality" in page
    assert _shown(page) == set()


def test_the_device_page_shows_what_the_issue_names(ui_client: TestClient, ward: World,
                                                    ui_vendor_key: PrivateKey) -> None:
    page = ui_client.get("/fleet/pump-2").text
    versions = page[page.index("<h2>Versions"):page.index("<h2>Credentials")]
    assert '<th scope="row">app</th><td>5</td>' in versions
    assert "Journal state</dt><dd><span class=\"state state-bad\">" in page
    assert "✖</span> failed</span>" in page
    credentials = page[page.index("<h2>Credentials"):page.index("<h2>Trust anchors")]
    with ward.session() as s:
        device, _ = devices.get_device(s, device_id="pump-2")
    assert f"<dt>Generation</dt><dd>{device.credential_generation}</dd>" in credentials
    assert device.credential_fingerprint in credentials
    anchors = page[page.index("<h2>Trust anchors"):page.index("<h2>Rollouts of this device")]
    assert key_id(ui_vendor_key.public_key()).hex() in anchors
    assert "not shown to your roles" not in anchors
    history = page[page.index("<h2>Reports and events"):]
    assert "health check failed" in history
    assert "<dt>error 7</dt><dd>" + str(escape(error_codes.load().explain(7))) in history
    assert "✔</span> completed" not in page
    # busy, in words
    assert "◉</span> busy</span> (updates wait)" in page
    assert ui_client.get("/fleet/pump-404").status_code == 404


@pytest.mark.parametrize(("quick", "message"), [
    ({"installed_below": "app<x"}, "installed below: &#39;app&lt;x&#39; is not a component"),
    ({"installed_below": "5"}, "installed below: &#39;5&#39; is not"),
    ({"criticality": "9"}, "criticality at least: &#39;9&#39; is not 1 to 4"),
    ({"busy": "maybe"}, "in clinical use: &#39;maybe&#39; is neither true nor false"),
    ({"last_seen": "yesterday"}, "last seen: &#39;yesterday&#39; is not one of 1h, 24h"),
])
def test_a_quick_value_the_page_does_not_offer_is_refused(
        ui_client: TestClient, ward: World, quick: dict[str, str], message: str) -> None:
    """Never dropped silently (which would show the whole fleet as if it matched)."""
    for path in ("/fleet", "/fleet/live"):
        page = ui_client.get(path, params={"group": "ward-3", **quick}).text
        assert message in page, page[:2000]
        assert _shown(page) == set()
