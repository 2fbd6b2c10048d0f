"""The audit log: hash-chained, append-only, and verify finds any change."""

from __future__ import annotations

import pytest
from sched_world import World
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from suture.scheduler.services import audit


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


def _tamper(world: World, statement: str, **params: object) -> None:
    """Run ``statement`` as an attacker with database access: past the append-only guard."""
    with world.session() as s, s.begin():
        if s.get_bind().dialect.name == "sqlite":  # a per-test copy of the database
            s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:  # the database is shared by the session's tests: skip triggers, this session only
            s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text(statement), params)


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
