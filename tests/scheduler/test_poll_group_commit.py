"""Group commit of polls (``api/serial.py``): polls waiting together share one
transaction and are answered after its commit; a refused poll among them makes each run
alone, so it changes nothing and costs no other poll its answer. Back-pressure: polls beyond
the in-flight bound are answered 503 with Retry-After at once, using nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from sched_world import CLASS_ID, ROOT_SECRET, VENDOR_ID, poll_thread_held
from sqlalchemy import Engine, event, insert, select, update
from suture.scheduler import credentials
from suture.scheduler.api.app import create_app
from suture.scheduler.api.routes import device as device_routes
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_session_factory
from suture.scheduler.ddi.tokens import token_hash
from suture.scheduler.models import Device

DEVICES = [f"g-{i:02d}" for i in range(6)]


def _register(engine: Engine, now: int) -> None:
    with make_session_factory(engine)() as s, s.begin():
        s.execute(insert(Device), [{
            "id": dev, "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
            "criticality": 2, "tags": [], "groups": ["ward-3"], "installed": {"app": 1},
            "created_at": now, "credential_generation": 1,
            "credential_fingerprint": credentials.fingerprint(
                credentials.derive_secret(ROOT_SECRET, dev, 1))} for dev in DEVICES])


def _counters(engine: Engine) -> dict[str, int]:
    with make_session_factory(engine)() as s:
        return dict(s.execute(select(Device.id, Device.last_counter)).tuples().all())


def _headers(dev: str, counter: int, now: int, generation: int = 1) -> dict[str, str]:
    path = f"/api/v1/devices/{dev}/schedule"
    return credentials.sign_request(credentials.derive_secret(ROOT_SECRET, dev, generation),
                                    method="GET", path=path, device_id=dev, time=now,
                                    counter=counter)


async def _together(app: Any, requests: list[tuple[str, dict[str, str]]]) -> list[int]:
    """The devices' schedule polls queued for the poll thread while it is held, then released
    at once."""
    return await _gets_together(app, [(f"/api/v1/devices/{dev}/schedule", headers)
                                      for dev, headers in requests])


async def _gets_together(app: Any, requests: list[tuple[str, dict[str, str]]]) -> list[int]:
    """GET requests (path, headers) queued for the poll thread while it is held, then released
    at once."""
    worker = app.state.scheduler.poll_worker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        async with poll_thread_held(worker):
            sent = [asyncio.ensure_future(client.get(path, headers=headers))
                    for path, headers in requests]
            await _queued(worker, len(requests))
        return [r.status_code for r in await asyncio.gather(*sent)]


async def _queued(worker: Any, count: int) -> None:
    """Until ``count`` items wait in the (held) poll thread's queue."""
    deadline = time.monotonic() + 30
    while worker._queue.qsize() < count:
        assert time.monotonic() < deadline, f"{worker._queue.qsize()} of {count} queued"
        await asyncio.sleep(0.01)


def test_polls_waiting_together_share_one_commit_and_a_refusal_spoils_none(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock) -> None:
    now = clock.now()
    _register(sqlite_engine, now)
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    commits: list[int] = []
    event.listen(sqlite_engine, "commit", lambda _conn: commits.append(1))

    # First polls (each signs and stores its document), all in one transaction.
    statuses = asyncio.run(_together(app, [(d, _headers(d, 1, now)) for d in DEVICES]))
    assert statuses == [200] * len(DEVICES)
    assert len(commits) == 1
    assert _counters(sqlite_engine) == dict.fromkeys(DEVICES, 1)

    # A bad MAC (wrong generation) and a replay among good polls: the group is rolled back
    # and each poll runs alone; the refused ones change nothing.
    commits.clear()
    batch = [(d, _headers(d, 2, now)) for d in DEVICES[:4]]
    batch.insert(1, (DEVICES[4], _headers(DEVICES[4], 5, now, generation=7)))
    batch.append((DEVICES[5], _headers(DEVICES[5], 1, now)))  # counter 1 again
    statuses = asyncio.run(_together(app, batch))
    assert statuses == [200, 401, 200, 200, 200, 401]
    assert len(commits) == 4  # the four good polls, each in its own transaction
    assert _counters(sqlite_engine) == {**dict.fromkeys(DEVICES[:4], 2),
                                        DEVICES[4]: 1, DEVICES[5]: 1}
    # The refused device's next genuine poll with that counter is accepted.
    assert asyncio.run(_together(app, [(DEVICES[4], _headers(DEVICES[4], 5, now))])) == [200]
    app.state.scheduler.poll_worker.stop()


def test_ddi_base_polls_share_the_group_and_a_bad_token_spoils_none(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock) -> None:
    now = clock.now()
    _register(sqlite_engine, now)
    linux = DEVICES[2:4]
    with sqlite_engine.begin() as conn:
        conn.execute(update(Device).where(Device.id.in_(linux)).values(
            kind="linux", tenant="DEFAULT", ddi_token_hash=token_hash("good")))
    app = create_app(settings, clock=clock, engine=sqlite_engine)
    commits: list[int] = []
    event.listen(sqlite_engine, "commit", lambda _conn: commits.append(1))

    def ddi(dev: str, token: str) -> tuple[str, dict[str, str]]:
        return f"/DEFAULT/controller/v1/{dev}", {"Authorization": f"TargetToken {token}"}

    statuses = asyncio.run(_gets_together(app, [
        (f"/api/v1/devices/{DEVICES[0]}/schedule", _headers(DEVICES[0], 1, now)),
        ddi(linux[0], "good"), ddi(linux[1], "good")]))
    assert statuses == [200, 200, 200]
    assert len(commits) == 1  # a suture poll and two DDI polls, one transaction

    clock.advance(60)
    commits.clear()
    statuses = asyncio.run(_gets_together(app, [
        ddi(linux[0], "good"), ddi(linux[1], "wrong"),
        (f"/api/v1/devices/{DEVICES[0]}/schedule", _headers(DEVICES[0], 2, now))]))
    assert statuses == [200, 401, 200]
    assert len(commits) == 2  # the group rolled back, the two good polls alone
    with make_session_factory(sqlite_engine)() as s:
        seen = dict(s.execute(select(Device.id, Device.last_seen)
                              .where(Device.id.in_(linux))).tuples().all())
    assert seen == {linux[0]: now + 60, linux[1]: now}  # the refused poll changed nothing
    app.state.scheduler.poll_worker.stop()


def test_polls_beyond_the_in_flight_bound_get_503_with_retry_after_and_use_nothing(
        sqlite_engine: Engine, settings: Settings, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = clock.now()
    _register(sqlite_engine, now)
    app = create_app(settings.model_copy(update={"max_polls_in_flight": 3}), clock=clock,
                     engine=sqlite_engine)
    worker = app.state.scheduler.poll_worker

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with poll_thread_held(worker):
                sent = []
                for dev in DEVICES[:5]:
                    sent.append(asyncio.ensure_future(client.get(
                        f"/api/v1/devices/{dev}/schedule", headers=_headers(dev, 1, now))))
                    await asyncio.sleep(0.02)  # in this order
                await _queued(worker, 3)
                refused = list(await asyncio.gather(*sent[3:]))  # answered while held
            return [*await asyncio.gather(*sent[:3]), *refused]

    answers = asyncio.run(burst())
    assert [r.status_code for r in answers] == [200, 200, 200, 503, 503]
    for r in answers[3:]:
        assert r.headers["retry-after"] == str(device_routes.RETRY_AFTER_S)
        assert r.json()["error"] == "busy"
    assert app.state.poll_gate.refused == 2
    assert app.state.poll_gate.in_flight == 0
    # The refused devices' counters were not used: the same requests succeed now.
    assert _counters(sqlite_engine) == {**dict.fromkeys(DEVICES[:3], 1),
                                        **dict.fromkeys(DEVICES[3:], 0)}
    assert asyncio.run(_together(app, [(d, _headers(d, 1, now)) for d in DEVICES[3:5]])) == [
        200, 200]
    worker.stop()
