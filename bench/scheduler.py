"""Scheduler: schedule polls per second and latency with 10,000 devices; planning 100,000.

Two uvicorn servers on loopback, each in its own process: the scheduler (SQLite, 10,000
registered devices) and a bare FastAPI endpoint (the baseline). An async client keeps
``CONCURRENCY`` requests in flight for ``SECONDS`` against each; every scheduler poll is a real
authenticated device request (HMAC, counter, signed schedule). Then a rollout is planned over
100,000 devices, against the baseline of reading those devices once. Last, eight devices
download a 16 MiB payload at once from the scheduler process, whose peak resident memory is
read before and after (``VmHWM``): the growth, against the bytes in flight, shows the payload is
streamed from the database a chunk at a time rather than loaded whole.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker
from suture.keys import generate_private_key, write_key_pair
from suture.scheduler import credentials, migrate
from suture.scheduler.config import write_config_file
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import Device
from suture.scheduler.schemas import RolloutCreate
from suture.scheduler.services import releases, rollouts
from suture.scheduler.services.audit import AuditKey, write_audit_key
from suture.scheduler.team import Team, sign_in_team

DEVICES = 10_000
ACTIVE = 2_000  # devices polled during the measurement (all registered, warmed first)
PLAN_DEVICES = 100_000
CONCURRENCY = 32
SECONDS = 6.0
VENDOR_ID = "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
CLASS_ID = "1492af14-2569-5e48-bf42-9b2d51f2ab45"
ROOT = bytes(range(32))
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _audit_key_path(db: Path) -> Path:
    return db.with_name(f"{db.stem}-audit-key.json")


def _operators(db: Path, *, now: int) -> tuple[sessionmaker[Session], Team]:
    """Sessions on ``db`` with a new audit key (beside it), and the bench's operators."""
    key = AuditKey.generate()
    write_audit_key(_audit_key_path(db), key)
    sessions = make_session_factory(make_engine(f"sqlite:///{db}"), audit_key=key)
    return sessions, sign_in_team(sessions, prefix="bench", now=now)


def _register(url: str, count: int, *, now: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    rows = []
    for i in range(count):
        dev = f"dev-{i:06d}"
        rows.append({
            "id": dev, "board": "sim", "vendor_id": VENDOR_ID, "class_id": CLASS_ID,
            "ward": f"ward-{i % 40}", "location": "", "criticality": 1 + i % 4,
            "tags": ["pilot"] if i % 10 == 0 else [], "groups": [f"site-{i % 3}"],
            "installed": {"app": 1 + i % 3}, "state": "idle", "busy": False, "created_at": now,
            "last_seen": None, "credential_generation": 1,
            "credential_fingerprint": credentials.fingerprint(
                credentials.derive_secret(ROOT, dev, 1)),
            "last_counter": 0, "schedule_number": 0, "schedule_decision": "",
        })
    with engine.begin() as conn:
        for start in range(0, count, 5000):
            conn.execute(insert(Device), rows[start : start + 5000])
    engine.dispose()


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


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Status and ETag of one HTTP/1.1 response; the body (Content-Length) is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, etag = 0, ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        lname = name.strip().lower()
        if lname == "content-length":
            length = int(value)
        elif lname == "etag":
            etag = value.strip()
    if length:
        await reader.readexactly(length)
    return status, etag


class Poller:
    def __init__(self, base: str, devices: list[str], scheduler: bool) -> None:
        self.base = base
        self.devices = devices
        self.scheduler = scheduler
        self.counters = dict.fromkeys(devices, 0)
        self.secrets = {d: credentials.derive_secret(ROOT, d, 1) for d in devices}
        self.latencies: list[float] = []
        self.errors = 0
        self.etags: dict[str, str] = {}
        self.conditional = False

    def request(self, device: str) -> tuple[str, dict[str, str]]:
        if not self.scheduler:
            return f"/bare/{device}", {}
        path = f"/api/v1/devices/{device}/schedule"
        self.counters[device] += 1
        return path, credentials.sign_request(
            self.secrets[device], method="GET", path=path, device_id=device,
            time=int(time.time()), counter=self.counters[device])

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
                path, headers = self.request(device)
                if self.conditional and device in self.etags:
                    headers["If-None-Match"] = self.etags[device]
                head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
                t0 = time.perf_counter()
                writer.write(head.encode())
                status, etag = await _read_response(reader)
                self.latencies.append(time.perf_counter() - t0)
                if status == 200:
                    self.etags[device] = etag
                elif status != 304:
                    self.errors += 1
        finally:
            writer.close()

    async def run(self, seconds: float, *, once: bool = False) -> dict[str, float]:
        """Polls for ``seconds``; with ``once``, each device once (at most ``seconds``)."""
        self.latencies = []
        shards = [self.devices[k::CONCURRENCY] for k in range(CONCURRENCY)]
        for shard in shards:
            random.shuffle(shard)
        url = httpx.URL(self.base)
        start = time.monotonic()
        stop = start + seconds
        await asyncio.gather(*(self.worker(url.host, url.port or 80, s, stop,
                                           len(s) if once else None)
                               for s in shards if s))
        elapsed = time.monotonic() - start
        lat = sorted(self.latencies)
        return {
            "rps": len(lat) / elapsed,
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
            "requests": float(len(lat)),
            "errors": float(self.errors),
        }


def _serve_scheduler(tmp: Path, db: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The scheduler on ``db`` in a uvicorn process of its own (a new signing key); its port."""
    key = generate_private_key("ES256")
    write_key_pair(key, tmp / f"{db.stem}-key.pem")
    config = tmp / f"{db.stem}.env"
    write_config_file(config, {
        "environment": "production", "database_url": f"sqlite:///{db}",
        "signing_key_path": str(tmp / f"{db.stem}-key.pem"), "device_root_secret": ROOT.hex(),
        "advance_interval_s": 0, "audit_key_path": str(_audit_key_path(db))})
    port = _free_port()
    return _serve(["--factory", "suture.scheduler.api.asgi:from_env"], port,
                  {"SUTURE_SCHEDULER_CONFIG": str(config)}), port


def _poll_figures(tmp: Path) -> dict[str, Any]:
    db = tmp / "poll.db"
    _register(f"sqlite:///{db}", DEVICES, now=int(time.time()))
    _operators(db, now=int(time.time()))
    sched, sched_port = _serve_scheduler(tmp, db)
    bare_port = _free_port()
    bare = _serve(["bench._bare_app:app"], bare_port, {})
    try:
        rng = random.Random(7)
        active = rng.sample([f"dev-{i:06d}" for i in range(DEVICES)], ACTIVE)
        poller = Poller(f"http://127.0.0.1:{sched_port}", active, scheduler=True)
        # Each device's first poll signs its document: one poll of every device first.
        warm = asyncio.run(poller.run(120.0, once=True))
        polls = asyncio.run(poller.run(SECONDS))
        poller.conditional = True  # what an idle device sends: If-None-Match -> 304
        polls_304 = asyncio.run(poller.run(SECONDS))
        base = asyncio.run(Poller(f"http://127.0.0.1:{bare_port}", active, False).run(SECONDS))
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
        "bare_requests_per_s": round(base["rps"], 1),
        "bare_p50_ms": round(base["p50_ms"], 2),
        "bare_p99_ms": round(base["p99_ms"], 2),
        "schedule_polls_ratio_to_bare": round(polls["rps"] / base["rps"], 3),
        "schedule_poll_p50_ratio_to_bare": round(polls["p50_ms"] / base["p50_ms"], 2),
        "schedule_304_polls_ratio_to_bare": round(polls_304["rps"] / base["rps"], 3),
    }


def _plan_figures(tmp: Path) -> dict[str, Any]:
    from suture import suit

    url = f"sqlite:///{tmp / 'plan.db'}"
    now = int(time.time())
    _register(url, PLAN_DEVICES, now=now)
    vendor = generate_private_key("ES256")
    (tmp / "app.bin").write_bytes(b"\x00" * 4096)
    envelope = suit.create_envelope(
        {"sequence-number": 4, "vendor-id": VENDOR_ID, "class-id": CLASS_ID,
         "components": [{"id": ["app"], "file": "app.bin"}]}, vendor, base_dir=tmp)
    sessions, team = _operators(tmp / "plan.db", now=now)
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
    assert scanned == PLAN_DEVICES
    return {
        "plan_devices": ro.target_count,
        "plan_waves": ro.wave_count,
        "plan_100k_devices_s": round(plan_s, 3),
        "device_scan_100k_s": round(scan_s, 3),
        "plan_ratio_to_device_scan": round(plan_s / scan_s, 2),
    }


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


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="suture-bench-") as d:
        tmp = Path(d)
        return {**_poll_figures(tmp), **_plan_figures(tmp), **_download_figures(tmp)}
