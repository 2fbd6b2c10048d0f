"""``driver_sql.DriverStatement``: a Core statement run on the driver's cursor gives what
SQLAlchemy's execution gives, on both databases; JSON parameters are stored as the engine
stores them; the engine's ``before_cursor_execute`` listeners still see it; a statement it
cannot run the same way is refused when built."""

from __future__ import annotations

from typing import Any

import pytest
from sched_world import CLASS_ID, VENDOR_ID
from sqlalchemy import Engine, bindparam, event, insert, select, update
from suture.scheduler.driver_sql import DriverStatement, json_value
from suture.scheduler.models import Device, DeviceEvent

_TAGGED = DriverStatement(
    update(Device).where(Device.id == bindparam("device_id"))
    .values(installed=bindparam("installed"), busy=bindparam("busy"))
    .returning(Device.id, Device.installed, Device.busy, Device.criticality),
    json_params=("installed",))


def _device(engine: Engine, dev: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Device), {
            "id": dev, "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
            "criticality": 3, "tags": [], "groups": [], "installed": {"app": 1},
            "created_at": 1, "credential_generation": 1, "credential_fingerprint": "f"})


def test_a_driver_statement_writes_and_returns_what_sqlalchemy_would(engine: Engine) -> None:
    _device(engine, "d-1")
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.begin() as conn:
            row = _TAGGED.first(conn, {"device_id": "d-1", "installed": {"app": 2, "b": [1]},
                                       "busy": True})
            missing = _TAGGED.first(conn, {"device_id": "nobody", "installed": {},
                                           "busy": False})
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert row is not None
    assert (row[0], json_value(row[1]), bool(row[2]), row[3]) == (
        "d-1", {"app": 2, "b": [1]}, True, 3)
    assert missing is None
    assert [s.split()[0].upper() for s in seen if not s.startswith(("BEGIN", "COMMIT"))] == [
        "UPDATE", "UPDATE"]
    with engine.connect() as conn:  # read back through SQLAlchemy's own JSON type
        assert conn.execute(select(Device.installed, Device.busy)
                            .where(Device.id == "d-1")).one() == ({"app": 2, "b": [1]}, True)


def test_a_statement_with_an_in_list_is_refused_when_first_run(engine: Engine) -> None:
    listed = DriverStatement(select(Device.id).where(Device.id.in_(bindparam("ids",
                                                                             expanding=True))))
    with engine.connect() as conn, pytest.raises(TypeError, match="expanding"):
        listed.rows(conn, {"ids": ["d-1"]})


_EVENT = DriverStatement(
    insert(DeviceEvent).values(device_id=bindparam("device_id"), at=bindparam("at"),
                               kind="report", state=bindparam("state"),
                               detail=bindparam("detail")),
    json_params=("detail",))


def test_many_writes_each_parameter_set_in_one_executemany(engine: Engine) -> None:
    _device(engine, "d-1")
    seen: list[tuple[str, bool]] = []

    def note(_conn: Any, _cursor: Any, statement: str, _args: Any, _ctx: Any,
             many: bool) -> None:
        seen.append((statement.split()[0].upper(), many))

    sets = [{"device_id": "d-1", "at": at, "state": "idle", "detail": {"progress": at}}
            for at in (5, 6, 7)]
    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.begin() as conn:
            _EVENT.many(conn, sets)
            _EVENT.many(conn, [])  # nothing to write: no statement
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert [s for s in seen if s[0] not in ("BEGIN", "COMMIT")] == [("INSERT", True)]
    with engine.connect() as conn:
        assert conn.execute(select(DeviceEvent.at, DeviceEvent.kind, DeviceEvent.detail)
                            .order_by(DeviceEvent.id)).all() == [
            (5, "report", {"progress": 5}), (6, "report", {"progress": 6}),
            (7, "report", {"progress": 7})]
