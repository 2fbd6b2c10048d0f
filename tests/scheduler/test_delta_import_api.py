"""Importing a vendor-signed delta through the operator API (``POST /api/v1/releases/{id}/deltas``,
docs/scheduler.md): a release manager's delta of a release is verified and stored, listed, and
served to a device on its source release; a delta of another release, one that does not verify
(another key, a corrupt patch, bad base64), another role's request and an oversized upload
are refused with a clear 4xx, and nothing is stored."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sched_world import CLASS_ID, VENDOR_ID, Api, World, make_envelope
from sqlalchemy import func, select
from suture import suit
from suture.delta import DeltaRelease, make_delta
from suture.keys import PrivateKey, generate_private_key
from suture.scheduler.models import AuditRecord, Blob, Delta
from suture.scheduler.schedule_doc import K_PAYLOAD_URI


def signed_delta(key: PrivateKey, delta: DeltaRelease, seq: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return suit.create_envelope({
            "sequence-number": seq, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
            "components": [delta.component(["app"], f"https://vendor.example/app-{seq}.delta")],
        }, key, base_dir=Path(tmp))


def body(envelope: bytes, patch: bytes) -> dict[str, str]:
    return {"envelope_b64": base64.b64encode(envelope).decode(),
            "patch_b64": base64.b64encode(patch).decode()}


@pytest.fixture
def pair(world: World) -> tuple[int, int, DeltaRelease]:
    """Releases 1 and 2 of the application, and the delta from 1's image to 2's."""
    r1, r2 = world.release(1), world.release(2)
    _, p1 = make_envelope(world.vendor_key, world.tmp, 1)
    _, p2 = make_envelope(world.vendor_key, world.tmp, 2)
    return r1.id, r2.id, make_delta(p1, p2)


def stored(world: World) -> tuple[int, int, int]:
    """Deltas, blobs and delta-import audit records in the database."""
    with world.session() as s:
        return (s.scalar(select(func.count()).select_from(Delta)) or 0,
                s.scalar(select(func.count()).select_from(Blob)) or 0,
                s.scalar(select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.action == "release.delta.import")) or 0)


def test_a_release_manager_imports_a_delta(api: Api, world: World,
                                           pair: tuple[int, int, DeltaRelease]) -> None:
    r1, r2, d = pair
    envelope = signed_delta(world.vendor_key, d, 2)
    resp = api.client.post(f"/api/v1/releases/{r2}/deltas", json=body(envelope, d.patch),
                           headers=api.op)
    assert resp.status_code == 201, resp.text
    got: dict[str, Any] = resp.json()
    assert (got["release_id"], got["source_release_id"], got["payload_size"],
            got["envelope_size"], got["imported_by"]) == (r2, r1, len(d.patch), len(envelope),
                                                          "alice")
    listed = api.client.get(f"/api/v1/releases/{r2}/deltas", headers=api.as_("vera")).json()
    assert listed == [got]
    assert api.client.get(f"/api/v1/releases/{r1}/deltas", headers=api.op).json() == []
    assert stored(world)[::2] == (1, 1)
    # the same delta again: a conflict, nothing more stored
    again = api.client.post(f"/api/v1/releases/{r2}/deltas", json=body(envelope, d.patch),
                            headers=api.op)
    assert (again.status_code, again.json()["error"]) == (409, "conflict")
    assert stored(world)[::2] == (1, 1)
    # a device on release 1 is served it
    pump = world.device("pump", installed={"app": 1})
    world.start(world.rollout(r2).id)
    uri = str(pump.poll()[K_PAYLOAD_URI])
    assert uri.endswith(f"/releases/{r2}/deltas/{got['id']}/payload"), uri


def _other_key_envelope(world: World, d: DeltaRelease) -> bytes:
    return signed_delta(generate_private_key("ES256"), d, 2)


def _corrupt(patch: bytes) -> bytes:
    bad = bytearray(patch)
    bad[len(bad) // 2] ^= 0x01
    return bytes(bad)


@pytest.mark.parametrize(("case", "status", "error", "message"), [
    ("another release", 422, "release_not_verified", "not of release"),
    ("no such release", 404, "not_found", "no release 99"),
    ("another key", 422, "release_not_verified", "does not verify"),
    ("corrupt patch", 422, "release_not_verified", "patch does not match"),
    ("truncated patch", 422, "release_not_verified", "patch does not match"),
    ("bad base64", 422, "invalid_input", "patch_b64 is not valid base64"),
    ("missing patch", 422, "", "patch_b64"),  # the request's schema: FastAPI's detail
])
def test_a_bad_delta_is_refused_and_nothing_is_stored(
    api: Api, world: World, pair: tuple[int, int, DeltaRelease], case: str, status: int,
    error: str, message: str,
) -> None:
    r1, r2, d = pair
    envelope = signed_delta(world.vendor_key, d, 2)
    target, payload = r2, body(envelope, d.patch)
    if case == "another release":
        target = r1
    elif case == "no such release":
        target = 99
    elif case == "another key":
        payload = body(_other_key_envelope(world, d), d.patch)
    elif case == "corrupt patch":
        payload = body(envelope, _corrupt(d.patch))
    elif case == "truncated patch":
        payload = body(envelope, d.patch[:-1])
    elif case == "bad base64":
        payload["patch_b64"] = "not base64!"
    elif case == "missing patch":
        del payload["patch_b64"]
    before = stored(world)
    resp = api.client.post(f"/api/v1/releases/{target}/deltas", json=payload, headers=api.op)
    assert resp.status_code == status, resp.text
    answer = resp.json()
    assert answer.get("error", "") == error, answer
    assert message in resp.text, answer
    assert stored(world) == before
    assert api.client.get(f"/api/v1/releases/{r2}/deltas", headers=api.op).json() == []


@pytest.mark.parametrize("who", ["vera", "bob", "dave", "root"])
def test_only_release_managers_import_deltas(api: Api, world: World, who: str,
                                             pair: tuple[int, int, DeltaRelease]) -> None:
    _, r2, d = pair
    before = stored(world)
    resp = api.client.post(f"/api/v1/releases/{r2}/deltas",
                           json=body(signed_delta(world.vendor_key, d, 2), d.patch),
                           headers=api.as_(who))
    assert resp.status_code == 403, resp.text
    unauthenticated = api.client.post(f"/api/v1/releases/{r2}/deltas",
                                      json=body(signed_delta(world.vendor_key, d, 2), d.patch))
    assert unauthenticated.status_code == 401
    assert stored(world) == before


def test_an_oversized_delta_is_refused(api: Api, world: World,
                                       pair: tuple[int, int, DeltaRelease]) -> None:
    _, r2, d = pair
    state = api.client.app.state.scheduler  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"max_release_bytes": 1024})
    envelope = signed_delta(world.vendor_key, d, 2)
    before = stored(world)
    # within the body's bound (max_release_bytes in base64 plus 64 KiB), over the release's
    resp = api.client.post(f"/api/v1/releases/{r2}/deltas",
                           json=body(envelope, d.patch + bytes(2048)), headers=api.op)
    assert (resp.status_code, resp.json()["error"]) == (413, "too_large"), resp.text
    assert "larger than 1024 bytes" in resp.text
    # over the body's bound: refused by the body limit before the route reads it
    resp = api.client.post(f"/api/v1/releases/{r2}/deltas",
                           json=body(envelope, bytes(100 * 1024)), headers=api.op)
    assert (resp.status_code, resp.json()["error"]) == (413, "too_large"), resp.text
    assert stored(world) == before
