"""The audit log: hash-chained, keyed, append-only, checkpointed outside the database, and
verify finds any change: by someone without the audit key (a rewritten record, a rewritten
chain, a deleted tail with its head moved back) and, with checkpoints kept elsewhere, by
someone with it (an old head and tail put back)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from sched_world import AUDIT_KEY, Api, World
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from suture.scheduler.services import audit
from suture.scheduler.services.audit import AuditKey


def _some_history(world: World) -> None:
    dev = world.device("pump-1")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    world.start(ro.id)
    dev.update_fully()


def test_chain_verifies_and_counts(world: World) -> None:
    _some_history(world)
    result = audit.verify(world.session())
    assert result.ok
    assert result.records >= 10
    actions = {r.action for r in audit.recent(world.session(), limit=100)}
    assert {"device.add", "release.import", "rollout.create", "rollout.approve",
            "rollout.start", "device.report"} <= actions


def test_database_refuses_update_and_delete(world: World) -> None:
    _some_history(world)
    for statement in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
                      "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(DatabaseError, match="append-only"), world.session() as s, s.begin():
            s.execute(text(statement))
    assert audit.verify(world.session()).ok


_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete", "audit_log_append_at_end",
             "audit_head_forward_only", "audit_head_no_delete", "audit_head_no_insert")


def _tamper(world: World, *statements: str, **params: object) -> None:
    """Run ``statements`` as an attacker with database access: past the append-only guard."""
    with world.session() as s, s.begin():
        if s.get_bind().dialect.name == "sqlite":  # a per-test copy of the database
            for trigger in _TRIGGERS:
                s.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        else:  # the database is shared by the session's tests: skip triggers, this session only
            s.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            s.execute(text(statement), params)


def _rows(world: World) -> list[dict[str, object]]:
    with world.session() as s:
        return [dict(r._mapping) for r in s.execute(text(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash, mac FROM audit_log "
            "ORDER BY seq")).all()]


def _rechain(world: World, rows: list[dict[str, object]], key: AuditKey | None) -> None:
    """Write ``rows`` back as the whole log with a recomputed chain (and MACs under ``key``,
    an attacker's when it is not the audit key), and the head to match."""
    prev = audit.GENESIS_HASH
    statements, params = ["DELETE FROM audit_log"], {}
    for i, r in enumerate(rows, 1):
        digest = audit.chain_hash(prev, i, int(str(r["at"])), str(r["actor"]), str(r["action"]),
                                  str(r["subject"]), str(r["detail"]))
        mac = key.record_mac(i, digest) if key else r["mac"]
        statements.append(
            f"INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash, "
            f"mac) VALUES ({i}, {r['at']}, :actor{i}, :action{i}, :subject{i}, :detail{i}, "
            f"'{prev}', '{digest}', :mac{i})")
        params.update({f"actor{i}": r["actor"], f"action{i}": r["action"],
                       f"subject{i}": r["subject"], f"detail{i}": r["detail"], f"mac{i}": mac})
        prev = digest
    head_mac = key.head_mac(len(rows), prev) if key else None
    statements.append(f"UPDATE audit_head SET seq = {len(rows)}, hash = '{prev}', "
                      f"mac = :head_mac")
    params["head_mac"] = head_mac
    _tamper(world, *statements, **params)


def test_verify_finds_an_altered_record(world: World) -> None:
    _some_history(world)
    _tamper(world, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    result = audit.verify(world.session())
    assert not result.ok
    assert result.first_bad_seq == 3


def test_verify_finds_removed_records(world: World) -> None:
    _some_history(world)
    with world.session() as s, s.begin():
        last = s.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
    _tamper(world, "DELETE FROM audit_log WHERE seq = :s", s=last)
    result = audit.verify(world.session())
    assert not result.ok
    assert "removed" in result.reason
    _tamper(world, "DELETE FROM audit_log WHERE seq = 2")
    assert audit.verify(world.session()).first_bad_seq == 2


def test_a_renamed_approver_with_a_recomputed_chain_is_found(world: World) -> None:
    """Rename the approver and recompute every hash and the head: the chain is consistent,
    but without the audit key the MACs are not: verify names the record."""
    _some_history(world)
    rows = _rows(world)
    approve = next(r for r in rows if r["action"] == "rollout.approve")
    approve["actor"] = "carol"
    _rechain(world, rows, key=None)
    result = audit.verify(world.session())
    assert (result.ok, result.first_bad_seq) == (False, approve["seq"])
    assert "MAC" in result.reason
    _rechain(world, rows, key=AuditKey.generate())  # a key of the attacker's own
    assert audit.verify(world.session()).first_bad_seq == 1


def test_a_deleted_tail_with_its_head_moved_back_is_found(world: World) -> None:
    _some_history(world)
    rows = _rows(world)
    keep = rows[:-3]
    last = keep[-1]
    _tamper(world, f"DELETE FROM audit_log WHERE seq > {last['seq']}",
            f"UPDATE audit_head SET seq = {last['seq']}, hash = '{last['hash']}'")
    result = audit.verify(world.session())
    assert not result.ok
    assert "head's MAC" in result.reason
    # the head's MAC is not a record's: the record's own MAC does not pass for it
    _tamper(world, f"UPDATE audit_head SET mac = '{last['mac']}'")
    assert not audit.verify(world.session()).ok


def test_checkpoints_find_what_a_key_holder_did(world: World, tmp_path: Path) -> None:
    """Someone with the audit key restores an old head and its tail, or rewrites the chain
    consistently: a checkpoint kept outside the database does not match."""
    _some_history(world)
    cp_file = tmp_path / "checkpoints.jsonl"
    audit.append_checkpoint_file(cp_file, audit.checkpoint(world.session(),
                                                           now=world.clock.now()))
    checkpoints = audit.parse_checkpoints(cp_file.read_text().splitlines())
    assert audit.verify(world.session(), checkpoints=checkpoints).checkpoints == 1
    rows = _rows(world)
    # 1. the tail deleted and the head put back by the key holder
    _tamper(world, f"DELETE FROM audit_log WHERE seq > {rows[-4]['seq']}")
    _rechain(world, rows[:-3], key=AUDIT_KEY)
    assert audit.verify(world.session()).ok  # the database alone cannot tell
    result = audit.verify(world.session(), checkpoints=checkpoints)
    assert not result.ok
    assert f"saw record {rows[-1]['seq']}" in result.reason
    # 2. the whole chain rewritten by the key holder (an approver renamed)
    rows[3]["actor"] = "mallory"
    _rechain(world, rows, key=AUDIT_KEY)
    assert audit.verify(world.session()).ok
    result = audit.verify(world.session(), checkpoints=checkpoints)
    assert (result.ok, result.first_bad_seq) == (False, rows[-1]["seq"])
    assert "the chain was rewritten" in result.reason
    # 3. a checkpoint forged without the checkpoint key
    forged = audit.sign_checkpoint(AuditKey.generate(), seq=1, digest="0" * 64, at=0)
    result = audit.verify(world.session(), checkpoints=[forged])
    assert not result.ok
    assert "does not verify against the checkpoint key" in result.reason


def test_the_log_keyed_from_a_record_cannot_lose_its_keyed_part(world: World) -> None:
    """A log keyed from record 5 (a database from before the key): removing every keyed record
    and the head's MAC is still found."""
    _some_history(world)
    key = AuditKey(AUDIT_KEY.mac_key, AUDIT_KEY.checkpoint_key, keyed_from_seq=5)
    assert audit.verify(world.session(), key=key).ok
    row4 = _rows(world)[3]
    _tamper(world, "DELETE FROM audit_log WHERE seq > 3", "UPDATE audit_log SET mac = NULL",
            f"UPDATE audit_head SET seq = 3, hash = '{row4['prev_hash']}', mac = NULL")
    result = audit.verify(world.session(), key=key)
    assert not result.ok
    assert "the audit key covers records from 5 on" in result.reason


def test_replace_upsert_truncate_and_out_of_order_inserts_are_refused(world: World) -> None:
    _some_history(world)
    dialect = world.session().get_bind().dialect.name
    first = _rows(world)[0]
    values = ("(1, 0, 'mallory', 'rollout.approve', 'rollout:1', '{}', :prev, :hash, :mac)")
    params = {"prev": first["prev_hash"], "hash": first["hash"], "mac": first["mac"]}
    columns = "(seq, at, actor, action, subject, detail, prev_hash, hash, mac)"
    attempts = [
        f"INSERT INTO audit_log {columns} VALUES {values} "
        "ON CONFLICT (seq) DO UPDATE SET actor = excluded.actor",
        f"INSERT INTO audit_log {columns} VALUES {values.replace('(1,', '(100000,')}",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = 1",
        "TRUNCATE audit_log" if dialect == "postgresql" else "DELETE FROM audit_log",
    ]
    if dialect == "sqlite":
        attempts.insert(0, f"INSERT OR REPLACE INTO audit_log {columns} VALUES {values}")
        attempts.insert(1, f"REPLACE INTO audit_log {columns} VALUES {values}")
        attempts.append("INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, 0, 'x')")
    else:
        attempts.append("TRUNCATE audit_head")
    for statement in attempts:
        with pytest.raises(DatabaseError, match="append-only"), world.session() as s, \
                s.begin():
            s.execute(text(statement), params)
    assert audit.verify(world.session()).ok
    assert _rows(world)[0]["actor"] == first["actor"]


def test_export_for_a_siem(world: World, api: Api) -> None:
    """JSON lines and RFC 5424 messages, each set ending with a signed checkpoint that verify
    accepts; over the API (auditor) and sent to a syslog collector over UDP."""
    _some_history(world)
    lines = list(audit.export_lines(world.session(), now=world.clock.now(), node="sched-1"))
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert {"actor", "action", "subject", "detail", "hash", "mac", "time"} <= set(records[0])
    checkpoints = audit.parse_checkpoints(lines)
    assert [c.seq for c in checkpoints] == [len(records)]
    assert audit.verify(world.session(), checkpoints=checkpoints).ok
    syslog = list(audit.export_lines(world.session(), since=len(records) - 2, fmt="syslog",
                                     now=world.clock.now(), node="sched-1"))
    assert len(syslog) == 3
    assert syslog[0].startswith("<109>1 ")
    assert " sched-1 suture-scheduler - " in syslog[0]
    assert f'[suture@32473 seq="{len(records) - 1}" actor=' in syslog[0]
    assert "audit.checkpoint" in syslog[-1]
    r = api.client.get("/api/v1/audit/export?format=jsonl&since=2", headers=api.op)
    assert r.status_code == 200
    assert json.loads(r.text.splitlines()[0])["seq"] == 3
    assert api.client.get("/api/v1/audit/export", headers=api.as_("bob")).status_code == 403

    from suture.cli.scheduler_operator_cmd import _send

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(10)
        _send(syslog, f"udp://127.0.0.1:{collector.getsockname()[1]}")
        received = [collector.recv(65536).decode() for _ in syslog]
    assert received == syslog


def test_no_audit_key_no_change(world: World) -> None:
    """A session without the audit key writes nothing (the change it would audit included)."""
    from suture.scheduler.db import make_session_factory
    from suture.scheduler.errors import ConfigurationError
    from suture.scheduler.schemas import DeviceCreate
    from suture.scheduler.services import devices

    unkeyed = make_session_factory(world.session().get_bind())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no audit key"):
        devices.add_device(unkeyed(), create=DeviceCreate(
            id="pump-9", board="sim", vendor_id="fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe",
            class_id="1492af14-2569-5e48-bf42-9b2d51f2ab45"), root_secret=bytes(32),
            actor=world.alice, now=world.clock.now())
    with world.session() as s:
        assert s.execute(text("SELECT count(*) FROM devices WHERE id = 'pump-9'")).scalar() == 0
