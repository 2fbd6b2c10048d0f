"""The schedule poll's common path: the stored document is returned unsigned again while the
decision stands, a change re-signs it, and the anti-replay counter stays exact (also when the
poll is served by another app on the same database)."""

from __future__ import annotations

import gc
import threading

from fastapi.testclient import TestClient
from sched_world import ROOT_SECRET, Api
from sqlalchemy import Engine, select
from suture.keys import PrivateKey
from suture.scheduler import credentials
from suture.scheduler.api.app import create_app
from suture.scheduler.api.asgi import YOUNG_GENERATION_THRESHOLD, settle_heap
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_session_factory, sqlite_writer_turn
from suture.scheduler.models import Device
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import K_ACTION, K_SCHEDULE_NUMBER, verify_schedule
from test_device_api import provision, running_rollout

PATH = "/api/v1/devices/pump-1/schedule"


def _last_counter(engine: Engine, device_id: str) -> int:
    with make_session_factory(engine)() as s:
        return int(s.execute(select(Device.last_counter).where(Device.id == device_id))
                   .scalar_one())


def test_unchanged_schedule_is_served_as_stored_and_a_change_re_signs(
        api: Api, vendor_key: PrivateKey, scheduler_key: PrivateKey, tmp_path) -> None:
    provision(api, "pump-1")
    first = api.device_get("pump-1", PATH)
    assert first.status_code == 200
    api.clock.advance(600)
    # ES256 signatures are randomised: the same bytes mean the document was not signed again.
    for _ in range(3):
        again = api.device_get("pump-1", PATH)
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
    number = verify_schedule(first.content, scheduler_key.public_key())[K_SCHEDULE_NUMBER]

    running_rollout(api, vendor_key, tmp_path)
    changed = api.device_get("pump-1", PATH, headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200  # the old ETag no longer matches
    doc = verify_schedule(changed.content, scheduler_key.public_key())
    assert doc[K_SCHEDULE_NUMBER] == number + 1
    assert doc[K_ACTION] == Action.DOWNLOAD
    assert changed.headers["Suture-Schedule-Number"] == str(number + 1)
    same = api.device_get("pump-1", PATH, headers={"If-None-Match": changed.headers["etag"]})
    assert same.status_code == 304


def test_replayed_poll_is_refused_and_a_refused_poll_consumes_nothing(
        api: Api, engine: Engine) -> None:
    provision(api, "pump-1")
    headers = api.device_headers("pump-1", "GET", PATH, counter=10)
    assert api.client.get(PATH, headers=headers).status_code == 200
    assert _last_counter(engine, "pump-1") == 10
    for r in (api.client.get(PATH, headers=headers),
              api.device_get("pump-1", PATH, counter=9)):
        assert r.status_code == 401
        assert r.json()["error"] == "replayed"
    # A bad MAC with a fresh counter is refused and leaves the counter where it was, so the
    # device's own request with that counter still succeeds.
    wrong = credentials.derive_secret(ROOT_SECRET, "pump-1", 9)
    bad = api.device_get("pump-1", PATH, secret=wrong, counter=11)
    assert bad.status_code == 401
    assert bad.json()["error"] != "replayed"
    assert _last_counter(engine, "pump-1") == 10
    assert api.device_get("pump-1", PATH, counter=11).status_code == 200
    # A decommissioned device's polls are refused whatever the counter.
    assert api.client.post("/api/v1/devices/pump-1/decommission", headers=api.op,
                           json={"reason": "broken"}).status_code == 200
    assert api.device_get("pump-1", PATH, counter=12).status_code == 401
    assert _last_counter(engine, "pump-1") == 11


def test_a_counter_taken_by_one_app_is_refused_by_another(
        api: Api, engine: Engine, settings: Settings, clock: ManualClock) -> None:
    provision(api, "pump-1")
    headers = api.device_headers("pump-1", "GET", PATH, counter=5)
    with TestClient(create_app(settings, clock=clock, engine=engine)) as other:
        assert other.get(PATH, headers=headers).status_code == 200
        r = api.client.get(PATH, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "replayed"
        newer = api.device_headers("pump-1", "GET", PATH, counter=6)
        assert api.client.get(PATH, headers=newer).status_code == 200
        assert other.get(PATH, headers=newer).status_code == 401


def test_concurrent_polls_each_take_their_counter_once(api: Api, engine: Engine) -> None:
    provision(api, "pump-1")
    signed = {c: api.device_headers("pump-1", "GET", PATH, counter=c) for c in range(1, 41)}
    results: list[tuple[int, int]] = []

    def poll(counter: int) -> None:
        results.append((counter, api.client.get(PATH, headers=signed[counter]).status_code))

    # Every request twice, from eight threads: no counter is accepted twice.
    threads = [threading.Thread(target=lambda k=k: [poll(c) for c in list(signed)[k::8] * 2])
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    assert {s for _, s in results} <= {200, 401}
    accepted = [c for c, s in results if s == 200]
    assert accepted
    assert len(accepted) == len(set(accepted))
    assert _last_counter(engine, "pump-1") == max(accepted)


def test_writer_turn_is_one_thread_at_a_time_on_sqlite(sqlite_engine: Engine) -> None:
    sessions = make_session_factory(sqlite_engine)
    inside, most = [0], [0]
    guard = threading.Lock()

    def work() -> None:
        with sessions() as s, sqlite_writer_turn(s):
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            threading.Event().wait(0.01)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_serial_worker_runs_in_order_on_one_thread_and_hands_back_errors() -> None:
    import asyncio

    from suture.scheduler.api.serial import SerialWorker

    worker = SerialWorker("test-serial")
    seen: list[tuple[int, str]] = []

    def job(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        if i == 3:
            raise ValueError("three")
        return i * i

    async def main() -> list[object]:
        return await asyncio.gather(*(worker.run(job, i) for i in range(20)),
                                    return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        worker.stop()
    assert [i for i, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test-serial"}
    assert isinstance(results[3], ValueError)
    assert [r for i, r in enumerate(results) if i != 3] == [i * i for i in range(20) if i != 3]


def test_serving_process_freezes_what_it_built_to_start() -> None:
    """``settle_heap`` (called by ``asgi.from_env`` and ``suture scheduler serve``) moves the
    objects alive at start out of the collector's generations: a full collection no longer
    walks them."""
    gc.unfreeze()
    before = gc.get_threshold()
    try:
        assert gc.get_freeze_count() == 0
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules and objects of this process
        assert sum(gc.get_count()) < frozen
        # and the youngest generation is collected less often, the others as before
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *before[1:])
        assert before[0] < YOUNG_GENERATION_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
