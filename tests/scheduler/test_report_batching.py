"""Reports batched to the database (SQLite): the reports waiting together share one commit,
one refused report costs no other its acknowledgement, and a report acknowledged (2xx) is in
the database even when the process is killed right after."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sched_world import AUDIT_KEY, CLASS_ID, ROOT_SECRET, VENDOR_ID, poll_thread_held
from sqlalchemy import Engine, event, insert, select
from suture.scheduler import credentials
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings, write_config_file
from suture.scheduler.db import make_session_factory
from suture.scheduler.models import AuditRecord, Device, DeviceEvent
from suture.scheduler.services import audit

REPO = Path(__file__).resolve().parents[2]
DEVICES = [f"r-{i:02d}" for i in range(8)]


def _register(engine: Engine, now: int) -> None:
    with make_session_factory(engine)() as s, s.begin():
        s.execute(insert(Device), [{
            "id": dev, "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
            "criticality": 2, "tags": [], "groups": ["ward-3"], "installed": {"app": 1},
            "created_at": now, "credential_generation": 1,
            "credential_fingerprint": credentials.fingerprint(
                credentials.derive_secret(ROOT_SECRET, dev, 1))} for dev in DEVICES])


def _report(dev: str, counter: int, now: int, *, secret_of: str | None = None
            ) -> tuple[str, bytes, dict[str, str]]:
    """A signed report of ``dev`` whose ``progress`` is its counter (each report is told
    apart in the database by it); ``secret_of`` signs it with another device's secret."""
    path = f"/api/v1/devices/{dev}/reports"
    body = json.dumps({"state": "idle", "progress": counter}).encode()
    headers = credentials.sign_request(
        credentials.derive_secret(ROOT_SECRET, secret_of or dev, 1), method="POST", path=path,
        device_id=dev, time=now, counter=counter, body=body)
    return path, body, {**headers, "Content-Type": "application/json"}


def _recorded(engine: Engine) -> set[tuple[str, int]]:
    """(device, progress) of every report in the database."""
    with make_session_factory(engine)() as s:
        return {(dev, detail["progress"]) for dev, detail in s.execute(
            select(DeviceEvent.device_id, DeviceEvent.detail)
            .where(DeviceEvent.kind == "report"))}


def test_reports_waiting_together_share_one_commit_and_a_refusal_spoils_none(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock) -> None:
    now = clock.now()
    _register(sqlite_engine, now)
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    worker = app.state.scheduler.poll_worker
    commits: list[int] = []
    event.listen(sqlite_engine, "commit", lambda _conn: commits.append(1))

    async def together(sent: list[tuple[str, bytes, dict[str, str]]]) -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with poll_thread_held(worker):
                answers = [asyncio.ensure_future(client.post(path, content=body,
                                                             headers=headers))
                           for path, body, headers in sent]
                deadline = time.monotonic() + 30
                while worker._queue.qsize() < len(sent):
                    assert time.monotonic() < deadline, "the reports were not queued"
                    await asyncio.sleep(0.01)
                commits.clear()
            return [r.status_code for r in await asyncio.gather(*answers)]

    assert asyncio.run(together([_report(d, 1, now) for d in DEVICES])) == [200] * 8
    assert len(commits) == 1  # eight reports, one commit
    assert _recorded(sqlite_engine) == {(d, 1) for d in DEVICES}

    # The MAC check before the body passes, then another report with the same counter takes
    # it first: the second one is refused in the group, the group runs again report by
    # report, and only the refused report is missing.
    twice = _report(DEVICES[0], 2, now)
    sent = [_report(d, 2, now) for d in DEVICES[1:4]]
    assert asyncio.run(together([twice, *sent, twice])) == [200, 200, 200, 200, 401]
    assert _recorded(sqlite_engine) == {(d, 1) for d in DEVICES} | {
        (d, 2) for d in DEVICES[:4]}
    with make_session_factory(sqlite_engine)() as s:  # one audit record per report, in order
        assert s.execute(select(AuditRecord.subject).where(
            AuditRecord.action == "device.report")).scalars().all().count(DEVICES[0]) == 2
    worker.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_report_acknowledged_is_kept_when_the_process_is_killed_right_after(
        sqlite_engine: Engine, settings: Settings, tmp_path: Path) -> None:
    now = int(time.time())
    _register(sqlite_engine, now)
    config = tmp_path / "scheduler.env"
    write_config_file(config, {
        "environment": "production", "database_url": str(sqlite_engine.url),
        "signing_key_path": str(settings.signing_key_path),
        "device_root_secret": ROOT_SECRET.hex(), "advance_interval_s": 0,
        "audit_key_path": str(settings.audit_key_path)})
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "suture.scheduler.api.asgi:from_env",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env={**os.environ, "SUTURE_SCHEDULER_CONFIG": str(config)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "the scheduler exited"
            assert time.monotonic() < deadline, "the scheduler did not start"
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        acked = asyncio.run(_report_until_killed(base, proc, now))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert len(acked) >= 40
    # Every report acknowledged before the kill is in the database; reports still in flight
    # may or may not be (they were not acknowledged: the device sends them again).
    assert acked <= _recorded(sqlite_engine)


async def _report_until_killed(base: str, proc: subprocess.Popen[bytes], now: int
                               ) -> set[tuple[str, int]]:
    """Each device reports in a loop (eight reports in flight) until 40 are acknowledged;
    then the process is killed (SIGKILL) with reports still in flight. The acknowledged
    (device, counter) pairs."""
    acked: set[tuple[str, int]] = set()
    killed = asyncio.Event()

    async def device(dev: str, client: httpx.AsyncClient) -> None:
        counter = 0
        while not killed.is_set():
            counter += 1
            path, body, headers = _report(dev, counter, now)
            try:
                r = await client.post(base + path, content=body, headers=headers)
            except httpx.HTTPError:
                return  # the process is gone
            if r.status_code == 200 and not killed.is_set():
                acked.add((dev, counter))
                if len(acked) >= 40:
                    proc.send_signal(signal.SIGKILL)
                    killed.set()

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(device(d, client) for d in DEVICES))
    return acked


#: A request: method, path, body, headers.
Sent = tuple[str, str, bytes | None, dict[str, str]]


def _get(dev: str, counter: int, now: int) -> Sent:
    """A signed schedule poll of ``dev``."""
    path = f"/api/v1/devices/{dev}/schedule"
    return "GET", path, None, credentials.sign_request(
        credentials.derive_secret(ROOT_SECRET, dev, 1), method="GET", path=path,
        device_id=dev, time=now, counter=counter)


def _post(dev: str, counter: int, now: int) -> Sent:
    path, body, headers = _report(dev, counter, now)
    return "POST", path, body, headers


def _queued(app: Any, sent: list[Sent], ready: Callable[[], object] = lambda: None
            ) -> list[int]:
    """``sent`` queued for the poll thread in this order while it is held; ``ready()`` once
    they all are, then the thread let go. Their status codes."""
    worker = app.state.scheduler.poll_worker

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with poll_thread_held(worker):
                answers = []
                for method, path, body, headers in sent:
                    answers.append(asyncio.ensure_future(client.request(
                        method, path, content=body, headers=headers)))
                    deadline = time.monotonic() + 30
                    while worker._queue.qsize() < len(answers):
                        assert time.monotonic() < deadline, "the request was not queued"
                        await asyncio.sleep(0.005)
                ready()
            return [r.status_code for r in await asyncio.gather(*answers)]

    return asyncio.run(run())


def _verifies(engine: Engine) -> bool:
    with make_session_factory(engine, audit_key=AUDIT_KEY)() as s:
        return audit.verify(s).ok


def test_a_groups_history_and_audit_records_are_written_together_in_its_order(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock) -> None:
    """The common reports of a group write their history events and audit records together
    before the commit (one ``executemany`` each, the audit head read and moved once); a report
    of the general path in the group comes after the ones before it, in the chain and in the
    history alike, and the chain verifies."""
    now = clock.now()
    _register(sqlite_engine, now)
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    statements: list[tuple[str, bool]] = []

    def note(_conn: object, _cursor: object, sql: str, _args: object, _ctx: object,
             many: bool) -> None:
        statements.append((" ".join(sql.split()[:3]).upper(), many))

    def watched(sent: list[Sent]) -> list[int]:
        try:
            return _queued(app, sent, lambda: event.listen(sqlite_engine,
                                                           "before_cursor_execute", note))
        finally:
            event.remove(sqlite_engine, "before_cursor_execute", note)

    # Devices that polled have their schedule stored: their reports take the common path. One
    # that never polled takes the general path (its schedule is decided and stored then).
    assert _queued(app, [_get(d, 1, now) for d in DEVICES[:7]]) == [200] * 7
    assert watched([_post(d, 2, now) for d in DEVICES[:6]]) == [200] * 6
    writes = [s for s in statements if s[0].startswith(("INSERT INTO", "UPDATE AUDIT_HEAD",
                                                        "SELECT AUDIT_HEAD"))]
    assert writes == [("INSERT INTO DEVICE_EVENTS", True),
                      ("SELECT AUDIT_HEAD.SEQ, AUDIT_HEAD.HASH", False),
                      ("INSERT INTO AUDIT_LOG", True), ("UPDATE AUDIT_HEAD SET", False)]

    order = [DEVICES[0], DEVICES[1], DEVICES[7], DEVICES[2], DEVICES[6]]
    assert watched([_post(d, 3, now) for d in order]) == [200] * 5
    with make_session_factory(sqlite_engine)() as s:
        chained = s.execute(select(AuditRecord.subject).where(
            AuditRecord.action == "device.report").order_by(AuditRecord.seq)).scalars().all()
        history = s.execute(select(DeviceEvent.device_id).where(
            DeviceEvent.kind == "report").order_by(DeviceEvent.id)).scalars().all()
    assert chained == history == [*DEVICES[:6], *order]
    assert _verifies(sqlite_engine)
    assert _recorded(sqlite_engine) >= {(d, 3) for d in order}
    app.state.scheduler.poll_worker.stop()


def test_polls_and_reports_waiting_together_share_one_commit_in_their_order(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock) -> None:
    """Polls and reports queued together, interleaved, run in one transaction and one commit;
    the history keeps their order (the reports' events are written before a poll that
    follows them writes its own), and the audit chain verifies."""
    now = clock.now()
    _register(sqlite_engine, now)
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    commits: list[int] = []
    event.listen(sqlite_engine, "commit", lambda _conn: commits.append(1))
    # d0-d2 polled before (their reports take the common path); d3 and d4 poll for the first
    # time in the group (each decides and stores its schedule: a "schedule" event).
    assert _queued(app, [_get(d, 1, now) for d in DEVICES[:3]]) == [200] * 3
    group = [_post(DEVICES[0], 2, now), _get(DEVICES[3], 1, now), _post(DEVICES[1], 2, now),
             _get(DEVICES[4], 1, now), _post(DEVICES[2], 2, now)]
    assert _queued(app, group, commits.clear) == [200] * 5
    assert len(commits) == 1  # five requests of two kinds, one commit
    with make_session_factory(sqlite_engine)() as s:
        seen = s.execute(select(DeviceEvent.device_id, DeviceEvent.kind)
                         .where(DeviceEvent.device_id.in_(DEVICES[:5]))
                         .order_by(DeviceEvent.id)).all()
    assert [tuple(row) for row in seen][-5:] == [
        (DEVICES[0], "report"), (DEVICES[3], "schedule"), (DEVICES[1], "report"),
        (DEVICES[4], "schedule"), (DEVICES[2], "report")]
    assert _verifies(sqlite_engine)
    app.state.scheduler.poll_worker.stop()
