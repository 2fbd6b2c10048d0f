"""Several scheduler nodes on one PostgreSQL database: two app instances, each with its own
connection pool, serve concurrent polls, reports and advancement passes without issuing a
schedule number twice, advancing a wave twice, or forking the audit chain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sched_world import AUDIT_KEY, ROOT_SECRET, World, fresh_postgres
from sqlalchemy import Engine, func, select
from suture.keys import PrivateKey
from suture.scheduler import credentials
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import AuditRecord
from suture.scheduler.schedule_doc import K_ACTION, K_SCHEDULE_NUMBER, verify_schedule
from suture.scheduler.services import audit, rollouts
from suture.scheduler.services.schedules import ScheduleContext

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    engine = fresh_postgres(pg_database)
    yield engine
    engine.dispose()


class Node:
    def __init__(self, url: str, settings: Settings, clock: ManualClock) -> None:
        self.engine = make_engine(url, pool_size=8)
        self.app = create_app(settings, clock=clock, engine=self.engine)
        self.client = TestClient(self.app)
        self.clock = clock

    def signed(self, method: str, device: str, path: str, counter: int, body: bytes = b""
               ) -> dict[str, str]:
        secret = credentials.derive_secret(ROOT_SECRET, device, 1)
        return credentials.sign_request(secret, method=method, path=path, device_id=device,
                                        time=self.clock.now(), counter=counter, body=body)

    def poll(self, device: str, counter: int) -> tuple[int, bytes]:
        path = f"/api/v1/devices/{device}/schedule"
        r = self.client.get(path, headers=self.signed("GET", device, path, counter))
        return r.status_code, r.content

    def report(self, device: str, counter: int, body: dict[str, object]) -> int:
        path = f"/api/v1/devices/{device}/reports"
        raw = json.dumps(body).encode()
        headers = {**self.signed("POST", device, path, counter, raw),
                   "Content-Type": "application/json"}
        return self.client.post(path, content=raw, headers=headers).status_code

    def advance(self) -> list[rollouts.AdvanceChange]:
        with make_session_factory(self.engine, audit_key=AUDIT_KEY)() as session:
            return rollouts.advance(session, now=self.clock.now())

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


def test_two_nodes_share_one_database(pg_engine: Engine, pg_database: str, settings: Settings,
                                      scheduler_key: PrivateKey, vendor_key: PrivateKey,
                                      clock: ManualClock, ctx: ScheduleContext,
                                      tmp_path: Path, figures: object) -> None:
    world = World(make_session_factory(pg_engine, audit_key=AUDIT_KEY), clock, ctx,
                  scheduler_key, vendor_key, tmp_path)
    devs = [world.device(f"bed-{i:02d}") for i in range(40)]
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["10", "100%"], success_threshold=1.0)
    world.start(ro.id)
    a, b = Node(pg_database, settings, clock), Node(pg_database, settings, clock)
    try:
        # 1. Concurrent first polls of 40 devices through both nodes, while both advance.
        def first_poll(i: int) -> int:
            node = a if i % 2 else b
            status, body = node.poll(devs[i].id, 1)
            assert status == 200
            return int(verify_schedule(body, scheduler_key.public_key())[K_ACTION])

        with ThreadPoolExecutor(12) as pool:
            advancing = [pool.submit((a if k % 2 else b).advance) for k in range(6)]
            actions = list(pool.map(first_poll, range(40)))
            assert all(f.result() == [] for f in advancing)
        assert actions.count(1) == 10  # only the first wave downloads
        for d in devs:
            d.counter = 1

        # 2. The first wave succeeds; eight concurrent passes on two nodes open wave 2 once.
        wave0 = [d for d, act in zip(devs, actions, strict=True) if act == 1]
        for d in wave0:
            d.update_fully()
        barrier = threading.Barrier(8)

        def racing_advance(k: int) -> list[str]:
            barrier.wait()
            return [c.change for c in (a if k % 2 else b).advance()]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(racing_advance, range(8)))
        assert sum(r.count("advance") for r in results) == 1
        assert world.status(ro.id).rollout.current_wave == 1

        # 3. One device polled concurrently through both nodes: every accepted answer carries
        #    the same schedule number, the others are refused as replays; no 5xx.
        target = devs[-1]
        base = target.counter

        def same_device(k: int) -> tuple[int, int | None]:
            status, body = (a if k % 2 else b).poll(target.id, base + 1 + k)
            if status == 200:
                return status, int(verify_schedule(body, scheduler_key.public_key())
                                   [K_SCHEDULE_NUMBER])
            return status, None

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(same_device, range(16)))
        assert {s for s, _ in answers} <= {200, 401}
        numbers = {n for s, n in answers if s == 200}
        assert len(numbers) == 1

        # 4. Concurrent reports from 30 devices through both nodes: one unbroken audit chain.
        def report(i: int) -> int:
            d = devs[10 + i]
            return (a if i % 2 else b).report(d.id, 1000, {"state": "idle",
                                                          "installed": {"app": 1}})

        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(report, range(30)))
        assert codes == [200] * 30
        with world.session() as s:
            count = s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
        result = audit.verify(world.session())
        assert result.ok
        assert result.records == count
        figures("audit records appended by two nodes", count)  # type: ignore[operator]
    finally:
        a.close()
        b.close()
