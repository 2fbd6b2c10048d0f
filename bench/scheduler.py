"""Scheduler: polls per second and latency (10,000 and 1,000,000 devices), a burst, planning.

Two uvicorn servers on loopback, each in its own process: the scheduler (SQLite, 10,000
registered devices) and a bare FastAPI endpoint (the baseline). An async client keeps
``CONCURRENCY`` requests in flight for ``SECONDS`` against each; every scheduler poll is a real
authenticated device request (HMAC, counter, signed schedule), signed before the measurement
(counters in order) so the client only sends bytes; wrk (``bench/_wrk.py``, the same
concurrency and seconds) against the bare endpoint right after the client shows the client is
not the bottleneck (``client_to_wrk_bare_ratio``, at least 1). The same polls again against a
scheduler with 1,000,000 registered devices (registered by a bulk insert, not through the API):
the throughput should not depend on the fleet's size. A burst: ``BURST_DEVICES`` devices poll
once each within ``BURST_WINDOW_S`` (after an outage) over ``BURST_CONNECTIONS`` connections,
and follow the 503s' Retry-After with the agent's jitter until every one is answered. Then a
rollout is planned over 100,000 devices, against the baseline of reading those devices once,
and its status page is read. Last, eight devices download a 16 MiB payload at once from the
scheduler process, whose peak resident memory is read before and after (``VmHWM``): the growth,
against the bytes in flight, shows the payload is streamed from the database a chunk at a time
rather than loaded whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from suture.keys import PrivateKey, generate_private_key, load_private_key, write_key_pair
from suture.scheduler import credentials, migrate
from suture.scheduler.config import write_config_file
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import Device
from suture.scheduler.schemas import RolloutCreate
from suture.scheduler.services import planning, releases, rollouts, schedules
from suture.scheduler.services.audit import AuditKey, write_audit_key
from suture.scheduler.team import Team, sign_in_team

from bench import _wrk

DEVICES = 10_000
LARGE_FLEET = 1_000_000
ACTIVE = 2_000  # devices polled during the measurement (all registered, warmed first)
PLAN_DEVICES = 100_000
CONCURRENCY = 32
#: Seconds of each poll measurement; ``SUTURE_BENCH_SCHEDULER_SECONDS`` shortens it while
#: iterating.
SECONDS = float(os.environ.get("SUTURE_BENCH_SCHEDULER_SECONDS", "6"))
#: The parts to run (``SUTURE_BENCH_SCHEDULER_PARTS``, comma-separated; default all): ``polls``
#: (10,000 devices, 304s, reports, the burst), ``reports`` (signed polls then reports only, the
#: report path's ratio to polls), ``fleet`` (1,000,000 devices), ``plan``, ``download``,
#: ``postgres`` (one and two nodes; needs ``SUTURE_TEST_POSTGRES_URL``).
PARTS = ("polls", "reports", "fleet", "plan", "download", "postgres")
BURST_DEVICES = 10_000
BURST_WINDOW_S = 10.0
BURST_CONNECTIONS = 256
VENDOR_ID = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS_ID = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
ROOT = bytes(range(32))
REPO = Path(__file__).resolve().parent.parent


#: The most requests a second a measurement is signed ahead for: a device that runs out of
#: signed requests signs its next one when sent, and the client slows down.
PRESIGN_RATE = 6000


def _per_device(devices: int) -> int:
    """Requests to sign ahead for each of ``devices`` for one measurement of ``SECONDS``."""
    return max(4, int(SECONDS * PRESIGN_RATE / devices) + 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _audit_key_path(db: Path) -> Path:
    return db.with_name(f"{db.stem}-audit-key.json")


def _operators(db: Path, *, now: int) -> tuple[sessionmaker[Session], Team]:
    """Sessions on ``db`` with a new audit key (beside it), and the bench's operators."""
    return _operators_at(f"sqlite:///{db}", _audit_key_path(db), now=now)


def _operators_at(url: str, key_path: Path, *, now: int) -> tuple[sessionmaker[Session], Team]:
    """Sessions on ``url`` with a new audit key (written to ``key_path``), and the bench's
    operators."""
    key = AuditKey.generate()
    write_audit_key(key_path, key)
    sessions = make_session_factory(make_engine(url), audit_key=key)
    return sessions, sign_in_team(sessions, prefix="bench", now=now)


_DEVICE_COLUMNS = ("id", "board", "vendor_id", "class_id", "ward", "location", "criticality",
                   "tags", "groups", "installed", "state", "busy", "created_at",
                   "credential_generation", "credential_fingerprint", "last_counter",
                   "schedule_number", "schedule_decision")


def _register(url: str, count: int, *, now: int) -> None:
    """``count`` devices in one bulk insert (the driver's executemany or COPY), not the API."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    table = cast(Table, Device.__table__)
    batch: list[tuple[object, ...]] = []
    with Session(engine) as session, session.begin():
        for i in range(count):
            dev = f"dev-{i:07d}" if count > 999_999 else f"dev-{i:06d}"
            batch.append((
                dev, "sim", VENDOR_ID, CLASS_ID, f"ward-{i % 40}", "", 1 + i % 4,
                '["pilot"]' if i % 10 == 0 else "[]", f'["site-{i % 3}"]',
                f'{{"app": {1 + i % 3}}}', "idle", False, now, 1,
                credentials.fingerprint(credentials.derive_secret(ROOT, dev, 1)), 0, 0, ""))
            if len(batch) == 50_000:
                planning.bulk_insert(session, table, _DEVICE_COLUMNS, batch)
                batch = []
        planning.bulk_insert(session, table, _DEVICE_COLUMNS, batch)
    engine.dispose()


def _device_ids(count: int) -> list[str]:
    return [f"dev-{i:07d}" if count > 999_999 else f"dev-{i:06d}" for i in range(count)]


def _serve(target: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"server {target} exited with {proc.returncode}")
    proc.terminate()
    raise RuntimeError(f"server {target} did not start")


#: The response headers the client reads (uvicorn writes their names in lower case).
_HEADERS = re.compile(rb"\r\n(content-length|etag|retry-after):[ \t]*([^\r]*)", re.IGNORECASE)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str, int]:
    """Status, ETag and Retry-After of one HTTP/1.1 response; the body (Content-Length) is
    read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, etag, retry_after = 0, "", 0
    for name, value in _HEADERS.findall(head):
        lname = name.lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"etag":
            etag = value.decode("latin-1")
        else:
            retry_after = int(value)
    if length:
        await reader.readexactly(length)
    return status, etag, retry_after


class Poller:
    def __init__(self, base: str, devices: list[str], scheduler: bool) -> None:
        self.base = base
        self.devices = devices
        self.scheduler = scheduler
        self.counters = dict.fromkeys(devices, 0)
        self.secrets = {d: credentials.derive_secret(ROOT, d, 1) for d in devices}
        self.latencies: list[float] = []
        self.errors = 0
        self.busy = 0  # 503 answers
        self.etags: dict[str, str] = {}
        self.conditional = False
        #: Send reports (``POST .../reports``, a small JSON body) instead of polls.
        self.report = False
        self.signed: dict[str, list[str]] = {}
        #: Where the client sends each device's requests: the connections (workers) are
        #: spread over these base URLs (several nodes), a device always to the same one.
        self.bases = [base]

    def presign(self, per_device: int) -> None:
        """Each device's next ``per_device`` requests, signed now (counters in order): the
        client then only sends bytes. A device that runs out signs its next one when sent."""
        host = httpx.URL(self.base).host
        now = int(time.time())
        for device in self.devices:
            heads = []
            for _ in range(per_device):
                heads.append(self._head(device, host, now))
            heads.reverse()  # popped from the end, in counter order
            self.signed[device] = heads

    def _head(self, device: str, host: str, now: int) -> str:
        """The request line and headers, without the final empty line; a report: the whole
        request, body included."""
        if not self.scheduler:
            return f"GET /bare/{device} HTTP/1.1\r\nHost: {host}\r\n"
        self.counters[device] += 1
        if self.report:
            path = f"/api/v1/devices/{device}/reports"
            body = f'{{"state": "idle", "progress": {self.counters[device]}}}'
            headers = credentials.sign_request(
                self.secrets[device], method="POST", path=path, device_id=device, time=now,
                counter=self.counters[device], body=body.encode())
            return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n" + body)
        path = f"/api/v1/devices/{device}/schedule"
        headers = credentials.sign_request(
            self.secrets[device], method="GET", path=path, device_id=device, time=now,
            counter=self.counters[device])
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items())

    def request(self, device: str, host: str) -> bytes:
        heads = self.signed.get(device)
        head = heads.pop() if heads else self._head(device, host, int(time.time()))
        if head.startswith("POST"):
            return head.encode()
        if self.conditional and device in self.etags:
            head += f"If-None-Match: {self.etags[device]}\r\n"
        return (head + "\r\n").encode()

    async def send(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   host: str, device: str) -> tuple[int, int]:
        data = self.request(device, host)
        t0 = time.perf_counter()
        writer.write(data)
        status, etag, retry_after = await _read_response(reader)
        if status == 200:
            self.etags[device] = etag
        if status in (200, 304):
            self.latencies.append(time.perf_counter() - t0)
        elif status == 503:
            self.busy += 1
        else:
            self.errors += 1
        return status, retry_after

    async def worker(self, host: str, port: int, order: list[str], stop: float,
                     limit: int | None = None) -> None:
        # One keep-alive connection per worker, plain HTTP/1.1 over asyncio streams: the load
        # generator costs as little as possible, so the servers are what is measured. Each
        # worker owns its devices: one device's requests are sequential, as on a ward.
        reader, writer = await asyncio.open_connection(host, port)
        i = 0
        try:
            while time.monotonic() < stop and (limit is None or i < limit):
                device = order[i % len(order)]
                i += 1
                await self.send(reader, writer, host, device)
        finally:
            writer.close()

    async def run(self, seconds: float, *, once: bool = False) -> dict[str, float]:
        """Polls for ``seconds``; with ``once``, each device once (at most ``seconds``)."""
        self.latencies = []
        shards = [self.devices[k::CONCURRENCY] for k in range(CONCURRENCY)]
        for shard in shards:
            random.shuffle(shard)
        urls = [httpx.URL(base) for base in self.bases]
        start = time.monotonic()
        stop = start + seconds
        await asyncio.gather(*(self.worker(urls[k % len(urls)].host,
                                           urls[k % len(urls)].port or 80, s, stop,
                                           len(s) if once else None)
                               for k, s in enumerate(shards) if s))
        elapsed = time.monotonic() - start
        return _figures(self.latencies, elapsed, self.errors)

    async def burst(self, window: float, connections: int) -> dict[str, float]:
        """Every device polls once at a random time within ``window``; a 503 is retried after
        its Retry-After plus up to as much again at random (as the agent does), until every
        device is answered. Over ``connections`` keep-alive connections."""
        self.latencies = []
        self.busy = self.errors = 0
        url = httpx.URL(self.base)
        start = time.monotonic()
        due = [(start + random.uniform(0, window), d) for d in self.devices]
        heapq.heapify(due)
        answered = 0

        async def connection() -> None:
            nonlocal answered
            reader, writer = await asyncio.open_connection(url.host, url.port or 80)
            try:
                while due:
                    at, device = heapq.heappop(due)
                    await asyncio.sleep(max(0.0, at - time.monotonic()))
                    try:
                        status, after = await self.send(reader, writer, url.host, device)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # the server closed the idle keep-alive connection (uvicorn: after
                        # 5 s): a device opens a new one and sends its next request
                        writer.close()
                        reader, writer = await asyncio.open_connection(url.host, url.port or 80)
                        status, after = await self.send(reader, writer, url.host, device)
                    if status == 503:
                        heapq.heappush(due, (time.monotonic() + after + random.uniform(0, after),
                                             device))
                    else:
                        answered += 1
            finally:
                writer.close()

        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.monotonic() - start
        out = _figures(self.latencies, elapsed, self.errors)
        out["answered"] = float(answered)
        out["busy"] = float(self.busy)
        return out


def _figures(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    lat = sorted(latencies) or [0.0]
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "requests": float(len(latencies)),
        "errors": float(errors),
        "elapsed_s": elapsed,
    }


def _serve_scheduler(tmp: Path, db: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The scheduler on ``db`` in a uvicorn process of its own (its key: ``_signing_key``)."""
    return _serve_node(tmp, db.stem, f"sqlite:///{db}", _audit_key_path(db))


def _serve_node(tmp: Path, name: str, url: str, audit_key: Path
                ) -> tuple[subprocess.Popen[bytes], int]:
    """A scheduler node on ``url`` in a uvicorn process of its own; nodes of one ``name``
    share the signing key."""
    _signing_key(tmp, tmp / f"{name}.db")
    config = tmp / f"{name}-{_free_port()}.env"
    write_config_file(config, {
        "environment": "production", "database_url": url,
        "signing_key_path": str(tmp / f"{name}-key.pem"), "device_root_secret": ROOT.hex(),
        "advance_interval_s": 0, "audit_key_path": str(audit_key)})
    port = _free_port()
    return _serve(["--factory", "suture.scheduler.api.asgi:from_env"], port,
                  {"SUTURE_SCHEDULER_CONFIG": str(config)}), port


def _signing_key(tmp: Path, db: Path) -> PrivateKey:
    """The scheduler's signing key for ``db`` (made at the first call)."""
    path = tmp / f"{db.stem}-key.pem"
    if not path.exists():
        write_key_pair(generate_private_key("ES256"), path)
    return load_private_key(path)


def _store_documents(tmp: Path, db: Path, devices: list[str], *, now: int) -> None:
    """Each device's signed schedule decided and stored in-process, as its first poll would
    (the devices of the burst polled before the outage)."""
    sessions = make_session_factory(make_engine(f"sqlite:///{db}"))
    ctx = schedules.ScheduleContext(key=_signing_key(tmp, db), public_url="http://127.0.0.1",
                                    poll_interval_s=900, poll_jitter_s=120,
                                    forced_window_s=3600)
    for start in range(0, len(devices), 1000):
        with sessions() as session, session.begin():
            for device in session.execute(select(Device).where(
                    Device.id.in_(devices[start : start + 1000]))).scalars():
                schedules.refresh_locked(session, device, now, ctx)


def _poll_phase(port: int, active: list[str], poller: Poller | None = None
                ) -> tuple[Poller, dict[str, float], dict[str, float]]:
    """Each device's first poll (signs its document), then polls for ``SECONDS``."""
    poller = poller or Poller(f"http://127.0.0.1:{port}", active, scheduler=True)
    warm = asyncio.run(poller.run(120.0, once=True))
    poller.presign(_per_device(len(active)))
    polls = asyncio.run(poller.run(SECONDS))
    return poller, warm, polls


def _poll_figures(tmp: Path) -> dict[str, Any]:
    db = tmp / "poll.db"
    now = int(time.time())
    _register(f"sqlite:///{db}", DEVICES, now=now)
    _operators(db, now=now)
    rng = random.Random(7)
    everyone = _device_ids(DEVICES)
    active = rng.sample(everyone, ACTIVE)
    chosen = set(active)
    _store_documents(tmp, db, [d for d in everyone if d not in chosen], now=now)
    sched, sched_port = _serve_scheduler(tmp, db)
    bare_port = _free_port()
    bare = _serve(["bench._bare_app:app"], bare_port, {})
    try:
        poller, warm, polls = _poll_phase(sched_port, active)
        poller.conditional = True  # what an idle device sends: If-None-Match -> 304
        poller.presign(_per_device(ACTIVE))
        polls_304 = asyncio.run(poller.run(SECONDS))
        poller.conditional, poller.report = False, True  # reports, at the rate they come
        poller.presign(_per_device(ACTIVE))
        device_reports = asyncio.run(poller.run(SECONDS))
        poller.report = False
        base = asyncio.run(Poller(f"http://127.0.0.1:{bare_port}", active, False).run(SECONDS))
        wrk_bare = _wrk.measure(f"http://127.0.0.1:{bare_port}/bare/dev-000001",
                                seconds=SECONDS, connections=CONCURRENCY)
        burster = Poller(f"http://127.0.0.1:{sched_port}", everyone[:BURST_DEVICES], True)
        burster.counters.update(poller.counters)
        burster.presign(1)
        burst = asyncio.run(burster.burst(BURST_WINDOW_S, BURST_CONNECTIONS))
    finally:
        for proc in (sched, bare):
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "registered_devices": DEVICES,
        "polled_devices": ACTIVE,
        "concurrency": CONCURRENCY,
        "first_polls_per_s": round(warm["rps"], 1),
        "first_poll_p99_ms": round(warm["p99_ms"], 2),
        "schedule_polls_per_s": round(polls["rps"], 1),
        "schedule_poll_p50_ms": round(polls["p50_ms"], 2),
        "schedule_poll_p99_ms": round(polls["p99_ms"], 2),
        "schedule_poll_errors": int(polls["errors"] + warm["errors"] + polls_304["errors"]),
        "schedule_304_polls_per_s": round(polls_304["rps"], 1),
        "schedule_304_poll_p50_ms": round(polls_304["p50_ms"], 2),
        "schedule_304_poll_p99_ms": round(polls_304["p99_ms"], 2),
        "reports_per_s": round(device_reports["rps"], 1),
        "report_p50_ms": round(device_reports["p50_ms"], 2),
        "report_p99_ms": round(device_reports["p99_ms"], 2),
        "report_errors": int(device_reports["errors"]),
        "reports_ratio_to_schedule_polls": round(device_reports["rps"] / polls["rps"], 3),
        "reports_ratio_to_bare": round(device_reports["rps"] / base["rps"], 3),
        "bare_requests_per_s": round(base["rps"], 1),
        "bare_p50_ms": round(base["p50_ms"], 2),
        "bare_p99_ms": round(base["p99_ms"], 2),
        **_wrk.results("bare", wrk_bare),
        "client_to_wrk_bare_ratio": round(base["rps"] / wrk_bare["rps"], 3),
        "schedule_polls_ratio_to_bare": round(polls["rps"] / base["rps"], 3),
        "schedule_poll_p50_ratio_to_bare": round(polls["p50_ms"] / base["p50_ms"], 2),
        "schedule_poll_p99_ratio_to_bare": round(polls["p99_ms"] / base["p99_ms"], 2),
        "schedule_304_polls_ratio_to_bare": round(polls_304["rps"] / base["rps"], 3),
        "burst_devices": BURST_DEVICES,
        "burst_window_s": BURST_WINDOW_S,
        "burst_connections": BURST_CONNECTIONS,
        "burst_answered": int(burst["answered"]),
        "burst_all_answered_s": round(burst["elapsed_s"], 2),
        "burst_503_answers": int(burst["busy"]),
        "burst_errors": int(burst["errors"]),
        "burst_answered_poll_p99_ms": round(burst["p99_ms"], 2),
        "burst_polls_per_s": round(burst["rps"], 1),
    }


def _report_figures(tmp: Path) -> dict[str, Any]:
    """Signed polls, then signed reports, of the same devices against one scheduler (10,000
    registered), then the bare endpoint: the report path alone, as ratios to the polls
    measured just before and to the bare endpoint (the polls' own goal)."""
    db = tmp / "reports.db"
    now = int(time.time())
    _register(f"sqlite:///{db}", DEVICES, now=now)
    _operators(db, now=now)
    active = random.Random(7).sample(_device_ids(DEVICES), ACTIVE)
    sched, port = _serve_scheduler(tmp, db)
    bare_port = _free_port()
    bare = _serve(["bench._bare_app:app"], bare_port, {})
    try:
        poller, _, polls = _poll_phase(port, active)
        poller.report = True
        poller.presign(_per_device(ACTIVE))
        device_reports = asyncio.run(poller.run(SECONDS))
        base = asyncio.run(Poller(f"http://127.0.0.1:{bare_port}", active, False).run(SECONDS))
    finally:
        for proc in (sched, bare):
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "reports_part_schedule_polls_per_s": round(polls["rps"], 1),
        "reports_part_schedule_poll_p99_ms": round(polls["p99_ms"], 2),
        "reports_part_reports_per_s": round(device_reports["rps"], 1),
        "reports_part_report_p50_ms": round(device_reports["p50_ms"], 2),
        "reports_part_report_p99_ms": round(device_reports["p99_ms"], 2),
        "reports_part_report_errors": int(device_reports["errors"]),
        "reports_part_reports_ratio_to_schedule_polls": round(
            device_reports["rps"] / polls["rps"], 3),
        "reports_part_bare_requests_per_s": round(base["rps"], 1),
        "reports_part_reports_ratio_to_bare": round(device_reports["rps"] / base["rps"], 3),
    }


def _large_fleet_figures(tmp: Path, small: dict[str, Any]) -> dict[str, Any]:
    """The same signed polls with ``LARGE_FLEET`` registered devices."""
    db = tmp / "fleet.db"
    now = int(time.time())
    t0 = time.perf_counter()
    _register(f"sqlite:///{db}", LARGE_FLEET, now=now)
    register_s = time.perf_counter() - t0
    _operators(db, now=now)
    active = random.Random(7).sample(_device_ids(LARGE_FLEET), ACTIVE)
    sched, port = _serve_scheduler(tmp, db)
    try:
        _, _, polls = _poll_phase(port, active)
    finally:
        sched.terminate()
        sched.wait(timeout=30)
    db.unlink()
    return {
        "large_fleet_devices": LARGE_FLEET,
        "large_fleet_bulk_register_s": round(register_s, 1),
        "large_fleet_polls_per_s": round(polls["rps"], 1),
        "large_fleet_poll_p99_ms": round(polls["p99_ms"], 2),
        "large_fleet_poll_errors": int(polls["errors"]),
        **({"large_fleet_polls_ratio_to_10k": round(
            polls["rps"] / small["schedule_polls_per_s"], 3)} if small else {}),
    }


def _plan_figures(tmp: Path, url: str | None = None, prefix: str = "") -> dict[str, Any]:
    """Planning over ``PLAN_DEVICES`` on ``url`` (default: a new SQLite file); the figures'
    names start with ``prefix``."""
    from suture import suit

    url = url or f"sqlite:///{tmp / 'plan.db'}"
    now = int(time.time())
    _register(url, PLAN_DEVICES, now=now)
    vendor = generate_private_key("ES256")
    (tmp / "app.bin").write_bytes(b"\x00" * 4096)
    envelope = suit.create_envelope(
        {"sequence-number": 4, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
         "components": [{"id": ["app"], "file": "app.bin"}]}, vendor, base_dir=tmp)
    sessions, team = _operators_at(url, tmp / f"{prefix}plan-audit-key.json", now=now)
    rel = releases.import_release(sessions(), envelope=envelope,
                                  payload=(tmp / "app.bin").read_bytes(), sbom=None, notes=None,
                                  trust_anchors=[vendor.public_key()],
                                  actor=team.release_manager, now=now,
                                  allow_missing_sbom=True)
    t0 = time.perf_counter()
    with sessions() as s, s.begin():
        scanned = len(s.execute(select(Device.id, Device.installed, Device.groups)).all())
    scan_s = time.perf_counter() - t0
    spec = RolloutCreate(name="all", release_id=rel.id, target_groups=["site-0", "site-1",
                                                                       "site-2"],
                         target_filter='criticality <= 4 and not tags has "excluded"',
                         waves=["1%", "10%", "50%", "100%"], order="criticality")
    t0 = time.perf_counter()
    ro = rollouts.create_rollout(sessions(), spec=spec, actor=team.rollout_operator, now=now)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    status = rollouts.rollout_status(sessions(), rollout_id=ro.id)
    status_s = time.perf_counter() - t0
    assert sum(status.totals.values()) == ro.target_count
    assert scanned == PLAN_DEVICES
    return {
        f"{prefix}plan_devices": ro.target_count,
        f"{prefix}plan_waves": ro.wave_count,
        f"{prefix}plan_100k_devices_s": round(plan_s, 3),
        f"{prefix}device_scan_100k_s": round(scan_s, 3),
        f"{prefix}plan_ratio_to_device_scan": round(plan_s / scan_s, 2),
        f"{prefix}status_page_100k_devices_ms": round(status_s * 1000, 1),
    }


#: The PostgreSQL server of the ``postgres`` part (a database of its own is made on it and
#: dropped after): ``SUTURE_BENCH_POSTGRES_URL``, else the tests' ``SUTURE_TEST_POSTGRES_URL``.
POSTGRES_URL = (os.environ.get("SUTURE_BENCH_POSTGRES_URL")
                or os.environ.get("SUTURE_TEST_POSTGRES_URL"))


@contextlib.contextmanager
def _postgres_database(server: str) -> Iterator[str]:
    """A new database on ``server`` (its URL), dropped afterwards."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"suture_bench_{os.getpid()}_{int(time.time())}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _postgres_figures(tmp: Path, sqlite: dict[str, Any]) -> dict[str, Any]:
    """Signed and 304 polls against one scheduler node on PostgreSQL, then against two nodes
    (two uvicorn processes, the client's connections spread over both) on the same database,
    and planning over ``PLAN_DEVICES`` there; as ratios to the same run's one node and, when
    measured, the bare endpoint and SQLite."""
    if not POSTGRES_URL:
        return {}
    out: dict[str, Any] = {}
    with _postgres_database(POSTGRES_URL) as url:
        now = int(time.time())
        _register(url, DEVICES, now=now)
        key = tmp / "pg-audit-key.json"
        _operators_at(url, key, now=now)
        active = random.Random(7).sample(_device_ids(DEVICES), ACTIVE)
        nodes = [_serve_node(tmp, "pg", url, key)]
        try:
            poller, _, one = _poll_phase(nodes[0][1], active)
            poller.conditional = True
            poller.presign(_per_device(ACTIVE))
            one_304 = asyncio.run(poller.run(SECONDS))
            nodes.append(_serve_node(tmp, "pg", url, key))
            poller.conditional = False
            poller.bases = [f"http://127.0.0.1:{port}" for _, port in nodes]
            poller.presign(_per_device(ACTIVE))
            two = asyncio.run(poller.run(SECONDS))
        finally:
            for proc, _ in nodes:
                proc.terminate()
                proc.wait(timeout=30)
        out.update({
            "postgres_schedule_polls_per_s": round(one["rps"], 1),
            "postgres_schedule_poll_p50_ms": round(one["p50_ms"], 2),
            "postgres_schedule_poll_p99_ms": round(one["p99_ms"], 2),
            "postgres_schedule_304_polls_per_s": round(one_304["rps"], 1),
            "postgres_schedule_304_poll_p99_ms": round(one_304["p99_ms"], 2),
            "postgres_two_nodes_schedule_polls_per_s": round(two["rps"], 1),
            "postgres_two_nodes_schedule_poll_p99_ms": round(two["p99_ms"], 2),
            "postgres_two_nodes_ratio_to_one_node": round(two["rps"] / one["rps"], 3),
            "postgres_poll_errors": int(one["errors"] + one_304["errors"] + two["errors"]),
        })
        if "bare_requests_per_s" in sqlite:
            out["postgres_schedule_polls_ratio_to_bare"] = round(
                one["rps"] / sqlite["bare_requests_per_s"], 3)
            out["postgres_schedule_polls_ratio_to_sqlite"] = round(
                one["rps"] / sqlite["schedule_polls_per_s"], 3)
    with _postgres_database(POSTGRES_URL) as url:
        out.update(_plan_figures(tmp, url, prefix="postgres_"))
    return out


DOWNLOAD_MIB = 16
DOWNLOADERS = 8


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc (Linux only)")


async def _download_all(base: str, devices: list[str], path: str) -> tuple[int, float]:
    async def one(dev: str, client: httpx.AsyncClient) -> int:
        headers = credentials.sign_request(
            credentials.derive_secret(ROOT, dev, 1), method="GET", path=path, device_id=dev,
            time=int(time.time()), counter=time.time_ns() // 1000)
        got = 0
        async with client.stream("GET", base + path, headers=headers) as r:
            if r.status_code != 200:
                raise RuntimeError(f"download answered {r.status_code}")
            async for chunk in r.aiter_raw():
                got += len(chunk)
        return got

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        sizes = await asyncio.gather(*(one(d, client) for d in devices))
    return sum(sizes), time.perf_counter() - t0


def _download_figures(tmp: Path) -> dict[str, Any]:
    from suture import suit

    db = tmp / "download.db"
    now = int(time.time())
    _register(f"sqlite:///{db}", DOWNLOADERS * 3, now=now)
    vendor = generate_private_key("ES256")
    (tmp / "big.bin").write_bytes(os.urandom(DOWNLOAD_MIB << 20))
    envelope = suit.create_envelope(
        {"sequence-number": 9, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
         "components": [{"id": ["app"], "file": "big.bin"}]}, vendor, base_dir=tmp)
    sessions, team = _operators(db, now=now)
    rel = releases.import_release(sessions(), envelope=envelope,
                                  payload=(tmp / "big.bin").read_bytes(), sbom=None, notes=None,
                                  trust_anchors=[vendor.public_key()],
                                  actor=team.release_manager, now=now,
                                  allow_missing_sbom=True)
    rollouts.create_rollout(sessions(), spec=RolloutCreate(
        name="big", release_id=rel.id, target_groups=["site-0"], waves=["100%"]),
        actor=team.rollout_operator, now=now)
    server, port = _serve_scheduler(tmp, db)
    devices = [f"dev-{i:06d}" for i in range(0, DOWNLOADERS * 3, 3)]  # the site-0 ones
    try:
        before = _peak_rss_kib(server.pid)
        total, seconds = asyncio.run(_download_all(
            f"http://127.0.0.1:{port}", devices, f"/api/v1/releases/{rel.id}/payload"))
        after = _peak_rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    if total != DOWNLOADERS * (DOWNLOAD_MIB << 20):
        raise RuntimeError(f"downloaded {total} bytes")
    in_flight_kib = DOWNLOADERS * (DOWNLOAD_MIB << 10)
    return {
        "download_payload_mib": DOWNLOAD_MIB,
        "download_concurrent_devices": DOWNLOADERS,
        "download_mib_per_s": round(total / (1 << 20) / seconds, 1),
        "download_server_peak_rss_before_mib": round(before / 1024, 1),
        "download_server_peak_rss_growth_mib": round((after - before) / 1024, 1),
        "download_peak_rss_growth_ratio_to_bytes_in_flight": round(
            (after - before) / in_flight_kib, 3),
    }


def _parts() -> set[str]:
    named = os.environ.get("SUTURE_BENCH_SCHEDULER_PARTS", "")
    chosen = {p.strip() for p in named.split(",") if p.strip()} or set(PARTS)
    unknown = chosen - set(PARTS)
    if unknown:
        raise SystemExit(f"SUTURE_BENCH_SCHEDULER_PARTS: unknown {sorted(unknown)}; "
                         f"have {', '.join(PARTS)}")
    return chosen


def run() -> dict[str, Any]:
    parts = _parts()
    if "polls" in parts:
        _wrk.require()  # before minutes of set-up
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="suture-bench-") as d:
        tmp = Path(d)
        if "polls" in parts:
            out.update(_poll_figures(tmp))
        if "reports" in parts:
            out.update(_report_figures(tmp))
        if "fleet" in parts:
            out.update(_large_fleet_figures(tmp, out))
        if "plan" in parts:
            out.update(_plan_figures(tmp))
        if "download" in parts:
            out.update(_download_figures(tmp))
        if "postgres" in parts:
            out.update(_postgres_figures(tmp, out))
    return out
