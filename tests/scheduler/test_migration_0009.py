"""Revision 0009 (tenants): what a scheduler had before is the ``DEFAULT`` tenant's, and each
biscuit a device held is kept as its biscuit for the rollout's own release (and back)."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, column, table, text
from suture.scheduler import migrate


def _rows(names: str) -> list[str]:
    return names.split()


def test_0009_keeps_biscuits_and_makes_everything_the_default_tenants(
        blank_engine: Engine) -> None:
    migrate.upgrade(blank_engine, "0008")
    digest = hashlib.sha256(b"x").hexdigest()
    blobs = table("blobs", *map(column, _rows("digest size")))
    rels = table("releases", *map(column, _rows(
        "id vendor_id class_id component sequence_number envelope_digest envelope_size "
        "payload_digest payload_size notes must_pass_through requires recalled imported_at "
        "imported_by")))
    ros = table("rollouts", *map(column, _rows(
        "id name release_id target_groups target_filter waves order success_threshold "
        "error_threshold error_min_sample on_error window_tz download_only state current_wave "
        "wave_count target_count required_approvals revert_on_abort status_reason created_by "
        "authors created_at version")))
    devs = table("devices", *map(column, _rows(
        "id board vendor_id class_id ward location criticality tags groups installed state "
        "busy created_at credential_generation credential_fingerprint last_counter "
        "schedule_number schedule_decision")))
    bis = table("device_biscuits", *map(column, _rows(
        "rollout_id device_id token revocation_id not_before expires_at issued_at")))
    ops = table("operators", *map(column, _rows("name roles created_at created_by active "
                                               "failed_logins")))
    with blank_engine.begin() as conn:
        conn.execute(blobs.insert(), [{"digest": digest, "size": 1}])
        conn.execute(rels.insert(), [{
            "id": 7, "vendor_id": "v", "class_id": "c", "component": "app",
            "sequence_number": 2, "envelope_digest": digest, "envelope_size": 1,
            "payload_digest": digest, "payload_size": 1, "notes": "", "must_pass_through": False,
            "requires": "[]", "recalled": False, "imported_at": 1, "imported_by": "alice"}])
        conn.execute(ros.insert(), [{
            "id": 3, "name": "r", "release_id": 7, "target_groups": '["g"]',
            "target_filter": "", "waves": '["100%"]', "order": "oldest-first",
            "success_threshold": 0.9, "error_threshold": 0.2, "error_min_sample": 5,
            "on_error": "pause", "window_tz": "UTC", "download_only": False,
            "state": "running", "current_wave": 0, "wave_count": 1, "target_count": 1,
            "required_approvals": 1, "revert_on_abort": False, "status_reason": "",
            "created_by": "alice", "authors": '["alice"]', "created_at": 1, "version": 1}])
        conn.execute(devs.insert(), [{
            "id": "pump-1", "board": "sim", "vendor_id": "v", "class_id": "c", "ward": "",
            "location": "", "criticality": 2, "tags": "[]", "groups": '["g"]',
            "installed": '{"app": 1}', "state": "idle", "busy": False, "created_at": 1,
            "credential_generation": 1, "credential_fingerprint": "f", "last_counter": 0,
            "schedule_number": 0, "schedule_decision": ""}])
        conn.execute(bis.insert(), [{
            "rollout_id": 3, "device_id": "pump-1", "token": "En0K", "revocation_id": "ab",
            "not_before": 10, "expires_at": 20, "issued_at": 5}])
        conn.execute(ops.insert(), [{"name": "alice", "roles": "[]", "created_at": 1,
                                     "created_by": "", "active": True, "failed_logins": 0}])
    migrate.upgrade(blank_engine, "0009")
    with blank_engine.connect() as conn:
        assert conn.execute(text(
            "SELECT rollout_id, device_id, release_id, token, revocation_id, not_before, "
            "expires_at FROM device_biscuits")).one() == (3, "pump-1", 7, "En0K", "ab", 10, 20)
        for name in ("operators", "rollouts", "audit_log"):
            tenants = set(conn.execute(text(f"SELECT tenant FROM {name}")).scalars())
            assert tenants <= {"DEFAULT"}
        assert conn.execute(text("SELECT tenant FROM operators")).scalar_one() == "DEFAULT"
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 0
    migrate.downgrade(blank_engine, "0008")
    with blank_engine.connect() as conn:
        assert conn.execute(text(
            "SELECT rollout_id, device_id, token FROM device_biscuits")).one() == (
            3, "pump-1", "En0K")
    migrate.upgrade(blank_engine)
    assert migrate.current_revision(blank_engine) == migrate.head_revision()
