"""SUIT reports through the device API (docs/formats/suit-report.md): a keyed device's report is
a COSE_Sign1 under its registered key, verified before anything is stored (a forged, unsigned
or altered one is refused and changes nothing); a device without a key sends a COSE_Mac0 under
its report MAC key (derived from its secret), or the bare report under its request's MAC;
operators read the decoded records."""

from __future__ import annotations

import hashlib
import hmac
import json

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID, Api, World
from suture.cose.mac0 import SymmetricKey
from suture.formats.suit_report import CONTENT_TYPE, PROPERTY_COMMAND
from suture.formats.trust_store import sec1_point
from suture.scheduler import credentials
from suture.scheduler.authz import Principal, Role
from suture.scheduler.errors import NotFoundError
from suture.scheduler.schemas import DeviceCreate
from suture.scheduler.services import devices, suit_reports, tenants
from suture.suit import codepoints as cp
from suture.suit.digest import digest_bytes
from suture.suit.report import SuitRecord, encode_report, report_from_device, sign_report

PATH = "/api/v1/devices/pump-1/suit-reports"
MANIFEST = digest_bytes(b"the manifest of release 7")
IMAGE_MATCH = SuitRecord((), cp.MANIFEST_INSTALL, 12, 0, {PROPERTY_COMMAND: 3})
VENDOR_HELD = SuitRecord((), cp.MANIFEST_COMMON, 5, 0, {PROPERTY_COMMAND: 1})
FAILED = report_from_device(
    {"state": "failed", "installed": {"app": 6}, "schedule_number": 4, "release_id": 7,
     "error": {"code": 31, "message": "staging: payload digest differs"}},
    manifest_digest=MANIFEST, records=[VENDOR_HELD], failed_at=IMAGE_MATCH)


def _enrol(api: Api, key: ec.EllipticCurvePrivateKey | None) -> None:
    body: dict[str, object] = {"id": "pump-1", "board": "sim", "vendor_id": VENDOR_ID,
                               "class_id": CLASS_ID, "installed": {"app": 6}}
    if key is not None:
        body["public_key"] = sec1_point(key).hex()
    r = api.client.post("/api/v1/devices", headers=api.op, json=body)
    assert r.status_code == 201, r.text


def _post(api: Api, body: bytes) -> tuple[int, dict[str, object]]:
    headers = api.device_headers("pump-1", "POST", PATH, body)
    headers["Content-Type"] = CONTENT_TYPE
    r = api.client.post(PATH, content=body, headers=headers)
    return r.status_code, r.json()


def _shown(api: Api) -> list[dict[str, object]]:
    r = api.client.get(PATH, headers=api.op)
    assert r.status_code == 200, r.text
    return list(r.json()["reports"])


def _audited(api: Api) -> int:
    audit = api.client.get("/api/v1/audit?limit=1000", headers=api.op).json()
    return sum(1 for a in audit if a["action"] == "device.suit_report")


def test_a_keyed_devices_signed_report_is_stored_and_shown(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, key)
    signed = sign_report(FAILED, key)
    status, ack = _post(api, signed)
    assert status == 200, ack
    assert ack["duplicate"] is False
    (shown,) = _shown(api)
    assert (shown["kind"], shown["succeeded"], shown["result_code"]) == ("COSE_Sign1", False, 31)
    assert shown["manifest_digest"] == MANIFEST.value.hex()
    result = shown["result"]
    assert isinstance(result, dict)
    assert result["reason"] == "condition-failed"
    assert result["record"] == {"manifest_id": [], "section": "install", "offset": 12,
                                "component_index": 0,
                                "properties": {"command": "condition-image-match"}}
    assert shown["records"] == [{"manifest_id": [], "section": "common", "offset": 5,
                                 "component_index": 0,
                                 "properties": {"command": "condition-vendor-identifier"}}]
    assert shown["device"] == {"state": "failed", "installed": {"app": 6},
                               "schedule_number": 4, "release_id": 7,
                               "error": {"code": 31,
                                         "message": "staging: payload digest differs"}}
    # the same bytes again (a lost answer): stored once
    status, ack = _post(api, signed)
    assert (status, ack["duplicate"]) == (200, True)
    assert len(_shown(api)) == 1
    assert _audited(api) == 1


def test_a_forged_or_unsigned_report_of_a_keyed_device_is_refused(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, key)
    other = ec.generate_private_key(ec.SECP256R1())
    altered = bytearray(sign_report(FAILED, key))
    altered[30] ^= 1
    refusals = {
        "unsigned": encode_report(FAILED),
        "another key": sign_report(FAILED, other),
        "altered": bytes(altered),
        "garbage": b"\xd2\x84\x00",
    }
    for what, body in refusals.items():
        status, answer = _post(api, body)
        assert status == 401, (what, answer)
        assert "SUIT report refused" in str(answer["message"]), (what, answer)
    status, answer = _post(api, encode_report(FAILED))
    assert "must be a COSE_Sign1" in str(answer["message"])
    assert _shown(api) == []
    assert _audited(api) == 0


def test_a_device_without_a_key_sends_the_bare_report(api: Api) -> None:
    _enrol(api, None)
    ok = report_from_device({"state": "confirmed", "installed": {"app": 7}},
                            manifest_digest=MANIFEST)
    status, ack = _post(api, encode_report(ok))
    assert status == 200, ack
    (shown,) = _shown(api)
    assert (shown["kind"], shown["succeeded"], shown["result"]) == ("MAC", True, None)
    # a COSE structure it has no key for, or a body that is no SUIT report: 422, nothing stored
    for body in (sign_report(ok, ec.generate_private_key(ec.SECP256R1())),
                 cbor2.dumps({99: [[-16, b"short"]], 3: [], 4: True}), b"{}",
                 json.dumps({"state": "confirmed"}).encode()):
        status, answer = _post(api, body)
        assert status == 422, (body, answer)
    assert len(_shown(api)) == 1


def _report_key(device_id: str = "pump-1", generation: int = 1) -> SymmetricKey:
    secret = credentials.derive_secret(ROOT_SECRET, device_id, generation)
    return SymmetricKey(credentials.suit_report_key(secret, device_id))


def test_a_device_without_a_key_macs_its_report(api: Api) -> None:
    _enrol(api, None)
    maced = sign_report(FAILED, _report_key())
    assert maced[:1] == b"\xd1"  # a tagged COSE_Mac0
    status, ack = _post(api, maced)
    assert status == 200, ack
    (shown,) = _shown(api)
    assert (shown["kind"], shown["succeeded"], shown["result_code"]) == ("COSE_Mac0", False, 31)
    assert shown["device"]["error"] == {"code": 31,  # type: ignore[index]
                                        "message": "staging: payload digest differs"}
    status, ack = _post(api, maced)
    assert (status, ack["duplicate"]) == (200, True)
    assert _audited(api) == 1


def test_a_mac0_report_under_another_key_is_refused(api: Api) -> None:
    _enrol(api, None)
    secret = credentials.derive_secret(ROOT_SECRET, "pump-1", 1)
    altered = bytearray(sign_report(FAILED, _report_key()))
    altered[-40] ^= 1
    refusals = {
        "the request MAC's key": sign_report(FAILED, SymmetricKey(secret)),
        "another device's": sign_report(FAILED, _report_key("pump-2")),
        "another generation's": sign_report(FAILED, _report_key(generation=2)),
        "altered": bytes(altered),
        "garbage": b"\xd1\x84\x00",
    }
    for what, body in refusals.items():
        status, answer = _post(api, body)
        assert status == 401, (what, answer)
        assert "SUIT report refused" in str(answer["message"]), (what, answer)
    assert _shown(api) == []
    assert _audited(api) == 0


def test_a_rotated_credential_rotates_the_report_key(api: Api) -> None:
    _enrol(api, None)
    r = api.client.post("/api/v1/devices/pump-1/credential", headers=api.op)
    assert r.status_code == 200, r.text
    new = bytes.fromhex(r.json()["secret_hex"])
    for body, want in ((sign_report(FAILED, _report_key(generation=1)), 401),
                       (sign_report(FAILED, _report_key(generation=2)), 200)):
        headers = api.device_headers("pump-1", "POST", PATH, body, secret=new)
        headers["Content-Type"] = CONTENT_TYPE
        answer = api.client.post(PATH, content=body, headers=headers)
        assert answer.status_code == want, answer.text
    assert [s["kind"] for s in _shown(api)] == ["COSE_Mac0"]


def test_a_keyed_devices_mac0_report_is_refused(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, key)
    status, answer = _post(api, sign_report(FAILED, _report_key()))
    assert status == 401, answer
    assert "must be a COSE_Sign1" in str(answer["message"])
    assert _shown(api) == []
    assert _audited(api) == 0


def test_the_report_key_is_derived_apart_from_the_device_secret() -> None:
    secret = credentials.derive_secret(ROOT_SECRET, "pump-1", 1)
    key = credentials.suit_report_key(secret, "pump-1")
    assert len(key) == 32
    assert key not in (secret, credentials.suit_report_key(secret, "pump-2"),
                       credentials.suit_report_key(bytes(32), "pump-1"))
    # RFC 5869: PRK = HMAC(salt, IKM), OKM = HMAC(PRK, info || 0x01) for 32 bytes
    prk = hmac.new(bytes(32), secret, hashlib.sha256).digest()
    info = b"suture-suit-report-mac-v1\x00pump-1\x01"
    assert key == hmac.new(prk, info, hashlib.sha256).digest()


def test_the_request_mac_comes_first(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, key)
    body = sign_report(FAILED, key)
    headers = api.device_headers("pump-1", "POST", PATH, b"another body")
    headers["Content-Type"] = CONTENT_TYPE
    r = api.client.post(PATH, content=body, headers=headers)
    assert r.status_code == 401
    assert _shown(api) == []
    assert api.client.get("/api/v1/devices/pump-9/suit-reports",
                          headers=api.op).status_code == 404


def test_a_body_past_the_report_bound_is_refused_unread(api: Api) -> None:
    _enrol(api, None)
    body = b"\xa0" * 5000  # past max_report_bytes (4096)
    status, answer = _post(api, body)
    assert (status, answer["error"]) == (413, "too_large")
    assert _shown(api) == []


def test_another_tenants_device_reports_are_absent(world: World) -> None:
    """In the vendor-run mode a hospital's operators see their own devices' SUIT reports only
    (another tenant's device is answered as absent)."""
    now = world.clock.now()
    tenants.add_tenant(world.session(), name="st-mary", display_name="St Mary",
                       mode=tenants.VENDOR_RUN_MODE, actor=world.op("root"), now=now)
    planner = Principal("mary-planner", frozenset({Role.DEVICE_MANAGER}), "password", None,
                        "st-mary")
    devices.add_device(world.session(), create=DeviceCreate(
        id="mary-1", board="sim", vendor_id=VENDOR_ID, class_id=CLASS_ID,
        installed={"app": 1}), root_secret=ROOT_SECRET, actor=planner, now=now)
    suit_reports.record_suit_report(world.session(), device_id="mary-1", counter=1,
                                    body=encode_report(FAILED), now=now)
    assert len(suit_reports.list_suit_reports(world.session(), device_id="mary-1",
                                              tenant="st-mary")) == 1
    with pytest.raises(NotFoundError):
        suit_reports.list_suit_reports(world.session(), device_id="mary-1")
