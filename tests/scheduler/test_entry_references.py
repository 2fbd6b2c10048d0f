"""Rollout entries' references (migration 0014): triggers keep the rules the foreign keys kept,
on both databases, checked once per statement on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sched_world import AUDIT_KEY, World, fresh_postgres
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from suture.keys import PrivateKey
from suture.scheduler.clock import ManualClock
from suture.scheduler.db import make_session_factory
from suture.scheduler.models import Device, Release, Rollout, RolloutDevice
from suture.scheduler.services.schedules import ScheduleContext


def _planned(world: World) -> tuple[int, int]:
    """Two devices planned into a rollout: (rollout id, release id)."""
    world.device("ref-a")
    world.device("ref-b")
    rel = world.release(2)
    ro = world.rollout(rel.id)
    assert ro.target_count == 2
    return ro.id, rel.id


def _entries(world: World, **where: object) -> list[tuple[int, str]]:
    with world.session() as s:
        query = select(RolloutDevice.rollout_id, RolloutDevice.device_id).order_by(
            RolloutDevice.device_id).filter_by(**where)
        return [tuple(row) for row in s.execute(query)]  # type: ignore[misc]


def _entry(rollout_id: int, device_id: str, step: int | None) -> dict[str, object]:
    return {"rollout_id": rollout_id, "device_id": device_id, "wave": 0, "position": 9,
            "state": "pending", "step_release_id": step, "busy_skips": 0, "updated_at": 1,
            "detail": ""}


@pytest.mark.parametrize("bad", ["device", "rollout", "release"])
def test_an_entry_naming_what_does_not_exist_is_refused_with_its_whole_statement(
        world: World, bad: str) -> None:
    rollout_id, release_id = _planned(world)
    world.device("ref-c")
    world.device("ref-d")
    before = _entries(world)
    rows = [_entry(rollout_id, "ref-c", release_id),
            _entry(999 if bad == "rollout" else rollout_id,
                   "ref-missing" if bad == "device" else "ref-d",
                   999 if bad == "release" else release_id)]
    with world.session() as s, pytest.raises(IntegrityError, match="does not exist"), \
            s.begin():
        s.execute(insert(RolloutDevice), rows)
    assert _entries(world) == before
    with world.session() as s, s.begin():  # the good row alone is accepted
        s.execute(insert(RolloutDevice), [rows[0]])
    assert (rollout_id, "ref-c") in _entries(world)


def test_an_entry_step_changed_to_a_release_that_does_not_exist_is_refused(world: World) -> None:
    rollout_id, release_id = _planned(world)
    other = world.release(3)
    moved = (update(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id,
                                         RolloutDevice.device_id == "ref-a"))
    with world.session() as s, pytest.raises(IntegrityError, match="does not exist"), \
            s.begin():
        s.execute(moved.values(step_release_id=999))
    with world.session() as s, s.begin():
        s.execute(moved.values(step_release_id=other.id))
        s.execute(moved.values(state="downloading"))  # not a reference: no check at all
    with world.session() as s:
        entry = s.get(RolloutDevice, (rollout_id, "ref-a"))
        assert entry is not None
        assert entry.step_release_id == other.id
        assert entry.state == "downloading"
    assert release_id != other.id


def test_a_deleted_device_or_rollout_takes_its_entries_along(world: World) -> None:
    rollout_id, _ = _planned(world)
    with world.session() as s, s.begin():
        s.execute(text("DELETE FROM devices WHERE id = 'ref-a'"))
    assert _entries(world) == [(rollout_id, "ref-b")]
    with world.session() as s, s.begin():
        s.execute(text("DELETE FROM rollouts WHERE id = :id"), {"id": rollout_id})
    assert _entries(world) == []
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 1


def test_a_release_an_entry_names_cannot_be_deleted_nor_a_named_id_changed(
        world: World) -> None:
    rollout_id, release_id = _planned(world)
    for statement in (f"DELETE FROM releases WHERE id = {release_id}",
                      f"UPDATE releases SET id = 999 WHERE id = {release_id}",
                      "UPDATE devices SET id = 'ref-z' WHERE id = 'ref-a'",
                      f"UPDATE rollouts SET id = 999 WHERE id = {rollout_id}"):
        with world.session() as s, pytest.raises(IntegrityError), s.begin():
            s.execute(text(statement))
    with world.session() as s:
        assert s.get(Release, release_id) is not None
        assert s.get(Rollout, rollout_id) is not None
    assert _entries(world) == [(rollout_id, "ref-a"), (rollout_id, "ref-b")]


@pytest.fixture
def pg_world(pg_database: str, clock: ManualClock, ctx: ScheduleContext,
             scheduler_key: PrivateKey, vendor_key: PrivateKey, tmp_path: Path
             ) -> Iterator[World]:
    engine = fresh_postgres(pg_database)
    yield World(make_session_factory(engine, audit_key=AUDIT_KEY), clock, ctx, scheduler_key,
                vendor_key, tmp_path)
    engine.dispose()


@pytest.mark.postgres
def test_truncating_what_entries_name_is_refused(pg_world: World) -> None:
    world = pg_world
    rollout_id, _ = _planned(world)
    for table in ("rollouts", "releases", "devices"):
        with world.session() as s, pytest.raises(DBAPIError, match="entries of rollouts"), \
                s.begin():
            s.execute(text(f"TRUNCATE {table} CASCADE"))
    assert len(_entries(world, rollout_id=rollout_id)) == 2


@pytest.mark.postgres
def test_a_device_deleted_while_its_entry_is_written_takes_the_entry_once_written(
        pg_world: World) -> None:
    """The delete waits for the transaction writing the entry, then deletes the entry too:
    no entry is left naming a deleted device."""
    world = pg_world
    rollout_id, release_id = _planned(world)
    world.device("ref-c")
    writer = world.session()
    writer.begin()
    writer.execute(insert(RolloutDevice), [_entry(rollout_id, "ref-c", release_id)])
    done = threading.Event()

    def delete() -> None:
        with world.session() as s, s.begin():
            s.execute(text("DELETE FROM devices WHERE id = 'ref-c'"))
        done.set()

    deleter = threading.Thread(target=delete)
    deleter.start()
    time.sleep(0.5)
    assert not done.is_set()  # waiting for the writer
    writer.commit()
    writer.close()
    deleter.join(timeout=30)
    assert done.is_set()
    assert _entries(world, device_id="ref-c") == []
