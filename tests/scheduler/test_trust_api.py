"""The trust-rotation routes (``/api/v1/trust``): a rotation of the scheduler's key published
over HTTP is carried in the device's signed schedule (key 22) until the device reports the
version; refusals (a forgery, a version not above the published one, a document that is not
a trust-store update, a viewer) answer with the error body and change nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import cbor2
from sched_world import Api, World
from suture import cose
from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
from suture.keys import generate_private_key
from suture.scheduler.schedule_doc import K_TRUST_UPDATE

ROTATIONS = "/api/v1/trust/rotations"
DEVICES = "/api/v1/trust/devices"


def _body(document: bytes) -> dict[str, str]:
    return {"document_b64": base64.b64encode(document).decode()}


def _carried(api: Api, world: World, device_id: str) -> Any:
    """The trust-store update the device's signed schedule carries (None: none)."""
    r = api.device_get(device_id, f"/api/v1/devices/{device_id}/schedule")
    assert r.status_code == 200, r.text
    doc = cbor2.loads(cose.verify1(r.content, [world.scheduler_key.public_key()]))
    return doc.get(K_TRUST_UPDATE)


def test_a_rotation_published_over_http_reaches_the_device(api: Api, world: World) -> None:
    world.device("pump-1")
    world.device("pump-2")
    nxt = generate_private_key("ES256")
    old = sec1_point(world.scheduler_key.public_key())
    rotation = sign_trust_update(TrustUpdate("scheduler", 1, (old, sec1_point(nxt))),
                                 world.scheduler_key)
    assert api.client.get(ROTATIONS, headers=api.op).json() == []
    assert _carried(api, world, "pump-1") is None

    r = api.client.post(ROTATIONS, json=_body(rotation), headers=api.op)
    assert r.status_code == 201, r.text
    published = r.json()
    assert (published["role"], published["version"], published["created_by"]) == (
        "scheduler", 1, "alice")
    assert published["keys"] == [old.hex(), sec1_point(nxt).hex()]

    listed = api.client.get(ROTATIONS, headers=api.as_("vera")).json()  # a viewer reads
    assert [(x["role"], x["version"]) for x in listed] == [("scheduler", 1)]
    assert _carried(api, world, "pump-1") == rotation
    held = api.client.get(DEVICES, headers=api.op).json()
    assert held == [{"device_id": "pump-1", "versions": {}, "pending": "scheduler v1"},
                    {"device_id": "pump-2", "versions": {}, "pending": "scheduler v1"}]
    assert len(api.client.get(DEVICES, params={"limit": 1}, headers=api.op).json()) == 1

    # once the device reports the version it holds, its schedule no longer carries it
    report = json.dumps({"state": "idle", "installed": {"app": 1},
                         "trust": {"vendor": 0, "scheduler": 1}}).encode()
    r = api.device_post("pump-1", "/api/v1/devices/pump-1/reports", report)
    assert r.status_code == 200, r.text
    assert _carried(api, world, "pump-1") is None
    assert api.client.get(DEVICES, headers=api.op).json()[0] == {
        "device_id": "pump-1", "versions": {"vendor": 0, "scheduler": 1}, "pending": None}


def test_refused_rotations_change_nothing(api: Api, world: World) -> None:
    world.device("pump-1")
    intruder = generate_private_key("ES256")
    forged = sign_trust_update(TrustUpdate("scheduler", 1, (sec1_point(intruder),)), intruder)
    old = sec1_point(world.scheduler_key.public_key())
    good = sign_trust_update(TrustUpdate("scheduler", 1, (old, sec1_point(intruder))),
                             world.scheduler_key)

    def refused(body: dict[str, str], status: int, code: str, token: str = "alice") -> str:
        r = api.client.post(ROTATIONS, json=body, headers=api.as_(token))
        assert r.status_code == status, r.text
        assert r.json()["error"] == code
        return str(r.json()["message"])

    assert "does not verify" in refused(_body(forged), 422, "invalid_input")
    assert "trust-store update" in refused(_body(b"\xa1\x01\x02"), 422, "invalid_input")
    refused({"document_b64": "not base64!"}, 422, "invalid_input")
    refused(_body(good), 403, "forbidden", token="vera")  # a viewer
    assert api.client.get(ROTATIONS, headers=api.op).json() == []
    assert _carried(api, world, "pump-1") is None

    assert api.client.post(ROTATIONS, json=_body(good), headers=api.op).status_code == 201
    assert "not above" in refused(_body(good), 409, "conflict")
    assert len(api.client.get(ROTATIONS, headers=api.op).json()) == 1
