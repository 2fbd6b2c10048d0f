"""The scheduler's side of the hospital's manifest over the vendor's, through the HTTP API on
SQLite and PostgreSQL: one envelope per rollout, issued by the first schedule that needs it,
signed with the scheduler's key over the vendor's unchanged envelope, carrying the rollout's
device set, start and approvals' digest; named by keys 7-9 of the schedules of devices whose
loader processes it (an older loader keeps the vendor's envelope), served with ranges to the
rollout's devices only."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from sched_world import (
    CLASS_ID,
    VENDOR_ID,
    Api,
    World,
    cli_accounts,
    make_release,
    release_upload,
)
from sqlalchemy import func, select
from suture.cli.main import app
from suture.keys import PrivateKey
from suture.scheduler.models import AuditRecord, Rollout, RolloutManifest
from suture.scheduler.schedule_doc import (
    K_ENVELOPE_DIGEST,
    K_ENVELOPE_SIZE,
    K_ENVELOPE_URI,
    K_PAYLOAD_DIGEST,
    K_PAYLOAD_URI,
    verify_schedule,
)
from suture.scheduler.services import hospital_manifests, rollouts
from suture.scheduler.services.rollouts import approval_digest
from suture.suit import SuitSignatureError, hospital_conditions, verify_envelope
from typer.testing import CliRunner

IDS = {name: uuid.uuid4() for name in ("pump-h1", "pump-h2", "pump-old", "pump-x")}


def _add(api: Api, name: str, group: str, *, hospital: bool, suit_id: bool = True) -> None:
    body: dict[str, object] = {"id": name, "board": "sim", "vendor_id": VENDOR_ID,
                               "class_id": CLASS_ID, "groups": [group], "installed": {"app": 1},
                               "hospital_manifest": hospital}
    if suit_id:
        body["suit_device_id"] = str(IDS[name])
    r = api.client.post("/api/v1/devices", headers=api.op, json=body)
    assert r.status_code == 201, r.text


def _rollout(api: Api, vendor_key: PrivateKey, tmp: Path) -> tuple[int, int, bytes]:
    envelope, payload, sbom = make_release(vendor_key, tmp, 2)
    r = api.client.post("/api/v1/releases", headers=api.op,
                        json=release_upload(envelope, payload, sbom))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = api.client.post("/api/v1/rollouts", headers=api.op,
                        json={"name": "r", "release_id": rid, "target_groups": ["ward-3"]})
    assert r.status_code == 201, r.text
    ro = r.json()["rollout"]["id"]
    assert api.client.post(f"/api/v1/rollouts/{ro}/approve",
                           headers=api.as_("bob")).status_code == 200
    assert api.client.post(f"/api/v1/rollouts/{ro}/start", headers=api.op).status_code == 200
    return rid, ro, envelope


def _schedule(api: Api, device: str, key: PrivateKey) -> dict[int, object]:
    r = api.device_get(device, f"/api/v1/devices/{device}/schedule")
    assert r.status_code == 200, r.text
    return dict(verify_schedule(r.content, key.public_key()))


def test_the_rollouts_hospital_envelope_is_named_for_the_devices_that_process_it(
    api: Api, world: World, tmp_path: Path, vendor_key: PrivateKey, scheduler_key: PrivateKey
) -> None:
    for name, hospital in (("pump-h1", True), ("pump-h2", True), ("pump-old", False)):
        _add(api, name, "ward-3", hospital=hospital)
    _add(api, "pump-x", "ward-4", hospital=True)
    start = api.clock.now()
    rid, ro, vendor_envelope = _rollout(api, vendor_key, tmp_path)

    old = _schedule(api, "pump-old", scheduler_key)
    assert old[K_ENVELOPE_URI] == f"http://127.0.0.1:8640/api/v1/releases/{rid}/envelope"
    assert old[K_ENVELOPE_DIGEST] == hashlib.sha256(vendor_envelope).digest()
    with world.session() as s:  # an older loader's schedule issues nothing
        assert s.scalar(select(func.count()).select_from(RolloutManifest)) == 0

    first = _schedule(api, "pump-h1", scheduler_key)
    api.clock.advance(5)
    second = _schedule(api, "pump-h2", scheduler_key)
    uri = f"http://127.0.0.1:8640/api/v1/rollouts/{ro}/hospital-envelope"
    for doc in (first, second):
        assert doc[K_ENVELOPE_URI] == uri
        assert (doc[K_PAYLOAD_URI], doc[K_PAYLOAD_DIGEST]) == (
            old[K_PAYLOAD_URI], old[K_PAYLOAD_DIGEST])
    assert first[K_ENVELOPE_DIGEST] == second[K_ENVELOPE_DIGEST]  # one per rollout

    path = f"/api/v1/rollouts/{ro}/hospital-envelope"
    r = api.device_get("pump-h1", path)
    assert r.status_code == 200, r.text
    hospital = r.content
    assert (hashlib.sha256(hospital).digest(), len(hospital)) == (
        first[K_ENVELOPE_DIGEST], first[K_ENVELOPE_SIZE])
    part = api.device_get("pump-h2", path, headers={"Range": "bytes=10-"})
    assert (part.status_code, part.content) == (206, hospital[10:])
    assert api.device_get("pump-x", path).status_code == 403
    assert api.device_get("pump-x", f"/api/v1/rollouts/{ro + 1}/hospital-envelope"
                          ).status_code == 403

    env = verify_envelope(hospital, scheduler_key.public_key(),
                          dependency_keys=vendor_key.public_key())
    with pytest.raises(SuitSignatureError):  # the hospital's is not the vendor's key
        verify_envelope(hospital, vendor_key.public_key())
    conditions = hospital_conditions(env)
    with world.session() as s:
        rollout = s.get(Rollout, ro)
        assert rollout is not None
        approvals = approval_digest(s, rollout)
        row = s.get(RolloutManifest, ro)
        assert row is not None
        assert (row.device_count, row.approvals_digest, row.envelope_size) == (
            3, approvals, len(hospital))
        issued = s.execute(select(AuditRecord).where(
            AuditRecord.action == "rollout.hospital_manifest")).scalars().all()
        assert [(r.subject, json.loads(r.detail)["envelope_digest"],
                 json.loads(r.detail)["approvals_digest"]) for r in issued] == [
            (f"rollout:{ro}", hashlib.sha256(hospital).hexdigest(), approvals)]
    assert conditions.devices == (IDS["pump-h1"], IDS["pump-h2"], IDS["pump-old"])
    assert conditions.not_before == start
    assert conditions.not_after is None
    assert conditions.approvals_digest is not None
    assert conditions.approvals_digest.value.hex() == approvals
    assert env.manifest.sequence_number == 2
    assert env.integrated_payloads["#vendor.suit"] == vendor_envelope


def test_without_every_devices_identifier_no_device_set_is_listed(
    api: Api, world: World, tmp_path: Path, vendor_key: PrivateKey, scheduler_key: PrivateKey
) -> None:
    _add(api, "pump-h1", "ward-3", hospital=True)
    _add(api, "pump-old", "ward-3", hospital=False, suit_id=False)
    _, ro, _ = _rollout(api, vendor_key, tmp_path)
    _schedule(api, "pump-h1", scheduler_key)
    with world.session() as s:
        row = s.get(RolloutManifest, ro)
        assert row is not None
        assert row.device_count == 0
    r = api.device_get("pump-h1", f"/api/v1/rollouts/{ro}/hospital-envelope")
    env = verify_envelope(r.content, scheduler_key.public_key(),
                          dependency_keys=vendor_key.public_key())
    assert hospital_conditions(env).devices == ()


def test_a_device_set_is_listed_up_to_its_limit(world: World) -> None:
    """MAX_LISTED_DEVICES devices are listed; one more and no device set is (the envelope
    stays small: docs/architecture.md)."""
    n = hospital_manifests.MAX_LISTED_DEVICES
    for i in range(n + 1):
        world.device(f"big-{i:03d}", groups=["big"] if i < n else ["extra"],
                     suit_device_id=str(uuid.UUID(int=i + 1)))
    release = world.release(2)
    at_limit = world.rollout(release.id, target_groups=["big"])
    with world.session() as s:
        assert hospital_manifests._device_set(s, at_limit.id) == tuple(
            uuid.UUID(int=i + 1) for i in range(n))
    world.start(at_limit.id)
    rollouts.abort_rollout(world.session(), rollout_id=at_limit.id, revert=False,
                           actor=world.alice, now=world.clock.now())
    above = world.rollout(release.id, target_groups=["big", "extra"])
    with world.session() as s:
        assert hospital_manifests._device_set(s, above.id) == ()


def test_the_cli_enrols_a_device_that_processes_the_hospitals_manifest(cli: CliRunner) -> None:
    assert cli.invoke(app, ["scheduler", "init"]).exit_code == 0
    env = {"SUTURE_TOKEN": cli_accounts(cli, app)["alice"]}
    suit_id = str(uuid.uuid4())
    for name, extra in (("pump-h", ["--hospital-manifest", "--suit-device-id", suit_id]),
                        ("pump-old", [])):
        result = cli.invoke(app, ["scheduler", "device", "add", name, "--board", "sim",
                                  "--vendor-id", VENDOR_ID, "--class-id", CLASS_ID, *extra],
                            env=env)
        assert result.exit_code == 0, result.output
    shown = {}
    for name in ("pump-h", "pump-old"):
        result = cli.invoke(app, ["scheduler", "device", "show", name, "--json"], env=env)
        assert result.exit_code == 0, result.output
        value = json.loads(result.output)
        shown[name] = (value["hospital_manifest"], value["suit_device_id"])
    assert shown == {"pump-h": (True, suit_id), "pump-old": (False, None)}
