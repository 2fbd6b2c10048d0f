"""DDI: hawkBit DDI base polls per second with 10,000 registered devices, beside suture's poll.

One scheduler (SQLite, 10,000 registered devices, each with a DDI target token) in a uvicorn
process of its own; the load generator of ``bench/scheduler.py`` keeps ``CONCURRENCY`` requests
in flight for ``SECONDS``, first with suture's own poll (HMAC-signed, counter, signed schedule)
of ``ACTIVE`` devices, then with the DDI base poll (``GET /DEFAULT/controller/v1/{id}``,
``Authorization: TargetToken``) of the same devices. Each device polls once before the
measurement. The ratio of the two, measured in the same run, is the figure to watch. The peer
(gooseBit) is measured beside both by ``python -m bench peers`` (``bench/peers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update
from suture.scheduler.db import make_engine
from suture.scheduler.ddi.tokens import token_hash
from suture.scheduler.models import Device

from bench.scheduler import (
    ACTIVE,
    DEVICES,
    SECONDS,
    Poller,
    _device_ids,
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


def _figures(prefix: str, figures: dict[str, float], unit: str = "polls") -> dict[str, Any]:
    return {f"{prefix}_{unit}_per_s": round(figures["rps"], 1),
            f"{prefix}_p50_ms": round(figures["p50_ms"], 2),
            f"{prefix}_p99_ms": round(figures["p99_ms"], 2),
            f"{prefix}_errors": int(figures["errors"])}


@contextlib.contextmanager
def ddi_scheduler(tmp: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """A scheduler in a uvicorn process of its own on a new SQLite database under ``tmp``,
    ``DEVICES`` registered, each a DDI device with a target token; yields its port, every
    device and the ``ACTIVE`` ones that poll (the same sample in every run)."""
    db = tmp / "ddi.db"
    now = int(time.time())
    _register(f"sqlite:///{db}", DEVICES, now=now)
    _operators(db, now=now)
    everyone = _device_ids(DEVICES)
    _issue_tokens(db, everyone)
    active = random.Random(7).sample(everyone, ACTIVE)
    server, port = _serve_scheduler(tmp, db)
    try:
        yield port, everyone, active
    finally:
        server.terminate()
        server.wait(timeout=30)


def suture_polls(port: int, active: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """suture's own signed poll, then the DDI base poll, of ``active`` for ``SECONDS`` each
    (each device polls once before each measurement)."""
    _, _, signed = _poll_phase(port, active)
    ddi = DdiPoller(f"http://127.0.0.1:{port}", active)
    asyncio.run(ddi.run(120.0, once=True))
    return signed, asyncio.run(ddi.run(SECONDS))


def run() -> dict[str, Any]:
    with (tempfile.TemporaryDirectory(prefix="suture-bench-ddi-") as name,
          ddi_scheduler(Path(name)) as (port, _, active)):
        suture, ddi = suture_polls(port, active)
    out: dict[str, Any] = {"registered_devices": DEVICES, "polling_devices": ACTIVE}
    out.update(_figures("suture", suture))
    out.update(_figures("ddi", ddi))
    out["ddi_to_suture_poll_ratio"] = round(ddi["rps"] / suture["rps"], 3)
    return out
