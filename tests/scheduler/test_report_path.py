"""The device report's common path (``services/reports.record_common``): a few Core statements,
and the same registry change, history event and audit record as the general path; a report
that moves a rollout entry or changes the schedule still takes the general path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sched_world import AUDIT_KEY, Api, report_json
from sqlalchemy import Engine, event, select
from suture.scheduler.db import make_session_factory
from suture.scheduler.models import AuditRecord, Device, DeviceEvent
from suture.scheduler.schemas import ReportIn
from suture.scheduler.services import audit, reports
from suture.scheduler.services.schedules import ScheduleContext
from test_device_api import provision

REPORT = {"state": "idle", "progress": 7, "busy": True, "installed": {"app": 3, "loader": 2},
          "trust": {"vendor": 2}}


def _path(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/reports"


def _kept(engine: Engine, device_id: str) -> dict[str, Any]:
    """What a report left of a device: its registry fields, its last event, its last audit
    record (the subject's name taken out)."""
    with make_session_factory(engine)() as s:
        dev = s.get(Device, device_id)
        assert dev is not None
        event_ = s.execute(select(DeviceEvent).where(DeviceEvent.device_id == device_id)
                           .order_by(DeviceEvent.id.desc()).limit(1)).scalar_one()
        record = s.execute(select(AuditRecord).where(AuditRecord.subject == device_id)
                           .order_by(AuditRecord.seq.desc()).limit(1)).scalar_one()
        return {"state": dev.state, "busy": dev.busy, "installed": dev.installed,
                "trust": dev.trust_versions, "number": dev.schedule_number,
                "counter": dev.last_counter, "event": (event_.kind, event_.state, event_.detail),
                "audit": (record.actor.replace(device_id, "D"), record.action, record.detail)}


def _statements(engine: Engine) -> tuple[list[str], Callable[..., None]]:
    """The first word of every statement sent from now on, and the listener (to remove)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", note)
    return seen, note


def test_common_report_takes_few_statements_and_keeps_what_the_general_path_keeps(
        api: Api, engine: Engine, ctx: ScheduleContext) -> None:
    for dev in ("pump-1", "pump-2"):
        provision(api, dev)
        assert api.device_get(dev, f"/api/v1/devices/{dev}/schedule").status_code == 200
    seen, note = _statements(engine)
    fast = api.device_post("pump-1", _path("pump-1"), report_json(**REPORT))
    event.remove(engine, "before_cursor_execute", note)
    assert fast.status_code == 200, fast.text
    assert fast.json() == {"accepted": True, "schedule_number": 1, "schedule_changed": False}
    # The counter's UPDATE ... RETURNING, the device, its event, the audit head read, the
    # record, the head moved: no ORM load, no savepoint, nothing else.
    statements = [s for s in seen if s not in ("BEGIN", "COMMIT")]
    assert statements == ["UPDATE", "UPDATE", "INSERT", "SELECT", "INSERT", "UPDATE"], seen

    sessions = make_session_factory(engine, audit_key=AUDIT_KEY)
    general = reports.record_report(sessions(), device_id="pump-2", counter=2,
                                    report=ReportIn.model_validate(REPORT),
                                    now=api.clock.now(), ctx=ctx)
    assert (general.schedule_number, general.schedule_changed) == (1, False)
    one, two = _kept(engine, "pump-1"), _kept(engine, "pump-2")
    assert one == two
    assert one["state"] == "idle"
    assert one["busy"] is True
    assert one["installed"] == {"app": 3, "loader": 2}
    assert one["trust"] == {"vendor": 2}
    assert one["audit"][2] == ('{"busy":true,"from":"idle","installed":{"app":3,"loader":2},'
                               '"progress":7,"state":"idle","trust":{"vendor":2}}')
    with sessions() as s:
        assert audit.verify(s).ok


def test_a_report_that_changes_the_schedule_or_goes_back_takes_the_general_path(
        api: Api, engine: Engine) -> None:
    provision(api, "pump-1")
    assert api.device_get("pump-1", "/api/v1/devices/pump-1/schedule").status_code == 200
    sent = api.device_post("pump-1", _path("pump-1"),
                           report_json(state="idle", trust={"vendor": 3}))
    assert sent.json()["schedule_changed"] is False
    # A trust version gone back: the general path decides again (nothing to rotate here, so
    # the schedule stands, but the registry keeps the lower version the device reports).
    back = api.device_post("pump-1", _path("pump-1"),
                           report_json(state="idle", trust={"vendor": 1}))
    assert back.status_code == 200
    assert back.json()["schedule_changed"] is False
    assert _kept(engine, "pump-1")["trust"] == {"vendor": 1}
    # A replayed report is refused with nothing recorded.
    headers = api.device_headers("pump-1", "POST", _path("pump-1"),
                                 report_json(state="idle", progress=1), counter=2)
    headers["Content-Type"] = "application/json"
    again = api.client.post(_path("pump-1"), content=report_json(state="idle", progress=1),
                            headers=headers)
    assert again.status_code == 401
    assert _kept(engine, "pump-1")["counter"] == 3
