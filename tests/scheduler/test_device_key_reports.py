"""Reports signed by the device key (docs/formats/device-api.md, "The device key"): the key
registered at enrolment, a keyed device's unsigned or wrongly signed report refused with
nothing changed, a credential cloned without the key refused, a new key registered with a new
credential, and the trust versions a report carries kept per device."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric import ec
from sched_world import CLASS_ID, VENDOR_ID, Api
from suture.formats.trust_store import sec1_point
from suture.scheduler import credentials

PATH = "/api/v1/devices/pump-1/reports"
REPORT = json.dumps({"state": "idle", "installed": {"app": 1},
                     "trust": {"vendor": 2, "scheduler": 0}}).encode()


def _enrol(api: Api, device_id: str, key: ec.EllipticCurvePrivateKey | None) -> dict[str, object]:
    body: dict[str, object] = {"id": device_id, "board": "sim", "vendor_id": VENDOR_ID,
                               "class_id": CLASS_ID, "groups": ["ward-3"],
                               "installed": {"app": 1}}
    if key is not None:
        body["public_key"] = sec1_point(key).hex()
    r = api.client.post("/api/v1/devices", headers=api.op, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _post(api: Api, body: bytes, *, key: ec.EllipticCurvePrivateKey | None,
          secret: bytes | None = None, signature: str | None = None) -> tuple[int, str]:
    counter = api.counters.get("pump-1", 0) + 1
    api.counters["pump-1"] = counter
    secret = secret or credentials.derive_secret(bytes(range(32)), "pump-1", 1)
    headers = credentials.sign_request(secret, method="POST", path=PATH, device_id="pump-1",
                                       time=api.clock.now(), counter=counter, body=body,
                                       device_key=key)
    if signature is not None:
        headers[credentials.HEADER_SIGNATURE] = signature
    headers["Content-Type"] = "application/json"
    r = api.client.post(PATH, content=body, headers=headers)
    return r.status_code, r.text


def _device(api: Api) -> dict[str, object]:
    return dict(api.client.get("/api/v1/devices/pump-1", headers=api.op).json())


def test_a_keyed_device_report_needs_its_signature(api: Api) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    shown = _enrol(api, "pump-1", key)
    assert shown["device"]["public_key"] == sec1_point(key).hex()  # type: ignore[index]
    before = _device(api)
    # no signature, another key's, a signature over another body, a malformed one: all 401
    other = ec.generate_private_key(ec.SECP256R1())
    assert _post(api, REPORT, key=None)[0] == 401
    assert _post(api, REPORT, key=other)[0] == 401
    over_other = credentials.sign_request(
        credentials.derive_secret(bytes(range(32)), "pump-1", 1), method="POST", path=PATH,
        device_id="pump-1", time=api.clock.now(), counter=1, body=b"{}", device_key=key)
    assert _post(api, REPORT, key=None,
                 signature=over_other[credentials.HEADER_SIGNATURE])[0] == 401
    assert _post(api, REPORT, key=None, signature="zz" * 64)[0] == 401
    after = _device(api)
    assert (after["state"], after["trust_versions"], len(after["history"])) == (  # type: ignore[arg-type]
        before["state"], before["trust_versions"], len(before["history"]))  # type: ignore[arg-type]
    status, text = _post(api, REPORT, key=key)
    assert status == 200, text
    assert _device(api)["trust_versions"] == {"vendor": 2, "scheduler": 0}


def test_a_cloned_credential_without_the_key_is_refused(api: Api) -> None:
    """Another board given pump-1's id and secret (its NVM copied, but a key of its own, as
    provisioning generates one per board) can poll, but none of its reports is accepted."""
    key = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, "pump-1", key)
    clone_key = ec.generate_private_key(ec.SECP256R1())
    assert api.device_get("pump-1", "/api/v1/devices/pump-1/schedule").status_code == 200
    api.counters["pump-1"] = api.counters["pump-1"]
    status, text = _post(api, REPORT, key=clone_key)
    assert status == 401
    assert "not signed by the device's key" in text
    assert _post(api, REPORT, key=key)[0] == 200


def test_a_device_without_a_key_reports_on_its_mac(api: Api) -> None:
    _enrol(api, "pump-1", None)
    assert _device(api)["public_key"] is None
    assert _post(api, REPORT, key=None)[0] == 200


def test_a_new_key_comes_with_a_new_credential(api: Api) -> None:
    old = ec.generate_private_key(ec.SECP256R1())
    _enrol(api, "pump-1", old)
    new = ec.generate_private_key(ec.SECP256R1())
    r = api.client.post("/api/v1/devices/pump-1/credential", headers=api.op,
                        json={"public_key": sec1_point(new).hex()})
    assert r.status_code == 200, r.text
    secret = bytes.fromhex(r.json()["secret_hex"])
    assert _post(api, REPORT, key=old, secret=secret)[0] == 401
    assert _post(api, REPORT, key=new, secret=secret)[0] == 200
    audit = api.client.get("/api/v1/audit?limit=1000", headers=api.op).json()
    rotated = [a for a in audit if a["action"] == "device.rotate_credential"]
    assert "public_key_sha256" in json.dumps(rotated[-1])


def test_a_key_that_is_not_a_curve_point_is_refused(api: Api) -> None:
    point = bytearray(sec1_point(ec.generate_private_key(ec.SECP256R1())))
    point[-1] ^= 1
    for bad in (point.hex(), "04" + "00" * 64, "02" + "11" * 64):
        r = api.client.post("/api/v1/devices", headers=api.op, json={
            "id": "pump-9", "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
            "public_key": bad})
        assert r.status_code == 422, (bad, r.text)
    assert api.client.get("/api/v1/devices/pump-9", headers=api.op).status_code == 404
