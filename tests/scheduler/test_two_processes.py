"""Two scheduler processes (uvicorn, each with its own advancement timer) on one PostgreSQL:
both serve signed polls, the waves of a rollout are each opened once whichever node gets there
first, a node killed in the middle of the rollout leaves nothing stuck (the other one finishes
it), and the once-only work of a pass takes an advisory lock only one node holds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sched_world import AUDIT_KEY, ROOT_SECRET, SimDevice, World, fresh_postgres
from sqlalchemy import Engine, select
from suture.keys import PrivateKey, write_key_pair
from suture.scheduler import credentials
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import write_config_file
from suture.scheduler.db import make_session_factory
from suture.scheduler.models import AuditRecord, Rollout
from suture.scheduler.policies.decide import Action
from suture.scheduler.schedule_doc import K_ACTION, K_DEVICE_ID, verify_schedule
from suture.scheduler.services import audit, rollouts
from suture.scheduler.services.audit import write_audit_key
from suture.scheduler.services.schedules import ScheduleContext

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    engine = fresh_postgres(pg_database)
    yield engine
    engine.dispose()


def _start_node(tmp: Path, url: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    config = tmp / f"{name}.env"
    write_config_file(config, {
        "environment": "production", "database_url": url,
        "signing_key_path": str(tmp / "scheduler-key.pem"), "device_root_secret": ROOT_SECRET.hex(),
        "advance_interval_s": 0.5, "audit_key_path": str(tmp / "audit-key.json")})
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "suture.scheduler.api.asgi:from_env",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=REPO, env={**os.environ, "SUTURE_SCHEDULER_CONFIG": str(config)},
        stdout=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


def _wait_up(proc: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the node exited"
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not start")


def _poll(base: str, dev: SimDevice, key: PrivateKey) -> Action:
    path = f"/api/v1/devices/{dev.id}/schedule"
    headers = credentials.sign_request(credentials.derive_secret(ROOT_SECRET, dev.id, 1),
                                       method="GET", path=path, device_id=dev.id,
                                       time=int(time.time()), counter=dev.next_counter())
    r = httpx.get(base + path, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    doc = verify_schedule(r.content, key.public_key())
    assert doc[K_DEVICE_ID] == dev.id
    return Action(doc[K_ACTION])


def _current_wave(world: World, rollout_id: int, want: int, state: str = "running") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with world.session() as s:
            ro = s.get(Rollout, rollout_id)
            assert ro is not None
            if ro.current_wave == want and ro.state == state:
                return
        time.sleep(0.2)
    raise AssertionError(f"rollout {rollout_id} did not reach wave {want} ({state})")


def test_two_nodes_serve_polls_and_open_each_wave_once_one_killed_midway(
        pg_engine: Engine, pg_database: str, scheduler_key: PrivateKey, vendor_key: PrivateKey,
        tmp_path: Path) -> None:
    write_key_pair(scheduler_key, tmp_path / "scheduler-key.pem")
    write_audit_key(tmp_path / "audit-key.json", AUDIT_KEY)
    clock = ManualClock(int(time.time()))
    ctx = ScheduleContext(key=scheduler_key, public_url="http://127.0.0.1:1",
                          poll_interval_s=900, poll_jitter_s=120, forced_window_s=3600)
    world = World(make_session_factory(pg_engine, audit_key=AUDIT_KEY), clock, ctx,
                  scheduler_key, vendor_key, tmp_path)
    devs = [world.device(f"n-{i}") for i in range(6)]
    rel = world.release(2)
    ro = world.rollout(rel.id, waves=["2", "50%", "100%"], success_threshold=1.0)
    world.start(ro.id)
    nodes = [_start_node(tmp_path, pg_database, name) for name in ("a", "b")]
    try:
        for proc, base in nodes:
            _wait_up(proc, base)
        # Both nodes answer every device's poll; the first wave's two devices are asked to
        # download, whichever node they ask.
        actions = [_poll(nodes[i % 2][1], d, scheduler_key) for i, d in enumerate(devs)]
        assert actions.count(Action.DOWNLOAD) == 2
        first = [d for d, a in zip(devs, actions, strict=True) if a == Action.DOWNLOAD]
        for d in first:
            d.update_fully()
        _current_wave(world, ro.id, 1)  # a node's timer opened wave 2
        # Node b dies without a goodbye; node a alone carries the rest.
        nodes[1][0].send_signal(signal.SIGKILL)
        nodes[1][0].wait(timeout=30)
        second = [d for d in devs if d not in first and _poll(nodes[0][1], d, scheduler_key)
                  == Action.DOWNLOAD]
        assert len(second) == 3
        for d in second:
            d.update_fully()
        _current_wave(world, ro.id, 2)
        for d in devs:
            if d not in first and d not in second:
                d.update_fully()
        _current_wave(world, ro.id, 2, state="completed")
    finally:
        for proc, _ in nodes:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    with world.session() as s:
        actions_logged = list(s.execute(
            select(AuditRecord.action).where(AuditRecord.subject == f"rollout:{ro.id}")
            .order_by(AuditRecord.seq)).scalars())
        assert actions_logged.count("rollout.advance") == 2  # each wave opened once
        assert actions_logged.count("rollout.complete") == 1
    assert audit.verify(world.session()).ok  # one chain, whichever node appended
    assert world.status(ro.id).totals == {"succeeded": 6}


def test_cluster_lock_is_held_by_one_transaction_at_a_time(pg_engine: Engine) -> None:
    sessions = make_session_factory(pg_engine)
    with sessions() as one, one.begin():
        assert rollouts.cluster_lock(one, "rollouts.timeout-sweep")
        with sessions() as two, two.begin():
            assert not rollouts.cluster_lock(two, "rollouts.timeout-sweep")
            assert rollouts.cluster_lock(two, "another job")
    with sessions() as three, three.begin():  # released at the end of one's transaction
        assert rollouts.cluster_lock(three, "rollouts.timeout-sweep")
