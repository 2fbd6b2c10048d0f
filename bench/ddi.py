"""DDI: hawkBit DDI base polls per second with 10,000 registered devices, beside suture's poll.

One scheduler (SQLite, 10,000 registered devices, each with a DDI target token) in a uvicorn
process of its own; the load generator of ``bench/scheduler.py`` keeps ``CONCURRENCY`` requests
in flight for ``SECONDS``, first with suture's own poll (HMAC-signed, counter, signed schedule)
of ``ACTIVE`` devices, then with the DDI base poll (``GET /DEFAULT/controller/v1/{id}``,
``Authorization: TargetToken``) of the same devices. Each device polls once before the
measurement. The ratio of the two, measured in the same run, is the figure to watch.

The peer: gooseBit (``bench/goosebit_peer.py``), with the same 10,000 devices registered (each
polls once), then the same DDI base poll of the same ``ACTIVE`` devices by the same load
generator (no token: gooseBit's default), measured after suture's in the same run.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update
from suture.scheduler.db import make_engine
from suture.scheduler.ddi.tokens import token_hash
from suture.scheduler.models import Device

from bench import goosebit_peer
from bench.scheduler import (
    ACTIVE,
    DEVICES,
    SECONDS,
    Poller,
    _device_ids,
    _free_port,
    _operators,
    _poll_phase,
    _register,
    _serve_scheduler,
)


def _token(device: str) -> str:
    return f"bench-token-{device}"


class DdiPoller(Poller):
    """The same load generator, sending DDI base polls."""

    def __init__(self, base: str, devices: list[str], *, tokens: bool = True) -> None:
        super().__init__(base, devices, scheduler=False)
        self.tokens = tokens

    def _head(self, device: str, host: str, now: int) -> str:
        head = f"GET /DEFAULT/controller/v1/{device} HTTP/1.1\r\nHost: {host}\r\n"
        return head + (f"Authorization: TargetToken {_token(device)}\r\n" if self.tokens
                       else "")


def _issue_tokens(db: Path, devices: list[str]) -> None:
    """Every device a DDI device of tenant DEFAULT with a target token (one bulk UPDATE)."""
    engine = make_engine(f"sqlite:///{db}")
    statement = (update(Device).where(Device.id == bindparam("device"))
                 .values(kind="linux", tenant="DEFAULT", ddi_token_hash=bindparam("digest"))
                 .execution_options(synchronize_session=False))
    with engine.begin() as conn:
        conn.execute(statement, [{"device": d, "digest": token_hash(_token(d))}
                                 for d in devices])
    engine.dispose()


def _figures(prefix: str, figures: dict[str, float]) -> dict[str, Any]:
    return {f"{prefix}_polls_per_s": round(figures["rps"], 1),
            f"{prefix}_p50_ms": round(figures["p50_ms"], 2),
            f"{prefix}_p99_ms": round(figures["p99_ms"], 2),
            f"{prefix}_errors": int(figures["errors"])}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="suture-bench-ddi-") as name:
        tmp = Path(name)
        db = tmp / "ddi.db"
        now = int(time.time())
        _register(f"sqlite:///{db}", DEVICES, now=now)
        _operators(db, now=now)
        everyone = _device_ids(DEVICES)
        _issue_tokens(db, everyone)
        active = random.Random(7).sample(everyone, ACTIVE)
        server, port = _serve_scheduler(tmp, db)
        try:
            _, _, suture_polls = _poll_phase(port, active)
            ddi = DdiPoller(f"http://127.0.0.1:{port}", active)
            asyncio.run(ddi.run(120.0, once=True))
            ddi_polls = asyncio.run(ddi.run(SECONDS))
        finally:
            server.terminate()
            server.wait(timeout=30)
        peer_polls = _goosebit(tmp, everyone, active)
    out: dict[str, Any] = {"registered_devices": DEVICES, "polling_devices": ACTIVE}
    out.update(_figures("suture", suture_polls))
    out.update(_figures("ddi", ddi_polls))
    out.update(_figures("goosebit_ddi", peer_polls))
    out["ddi_to_suture_poll_ratio"] = round(ddi_polls["rps"] / suture_polls["rps"], 3)
    out["ddi_to_goosebit_ddi_ratio"] = round(ddi_polls["rps"] / peer_polls["rps"], 3)
    return out


def _goosebit(tmp: Path, everyone: list[str], active: list[str]) -> dict[str, float]:
    """gooseBit's DDI base polls/s: every device registered by its first poll, then the
    measurement over the ``active`` ones."""
    port = _free_port()
    peer = goosebit_peer.serve(tmp, port)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(DdiPoller(base, everyone, tokens=False).run(600.0, once=True))
        polls = DdiPoller(base, active, tokens=False)
        asyncio.run(polls.run(120.0, once=True))
        return asyncio.run(polls.run(SECONDS))
    finally:
        peer.terminate()
        peer.wait(timeout=30)
