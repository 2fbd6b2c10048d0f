"""The scheduler of a ward: SQLite in a folder, uvicorn on a free loopback port, in a thread,
run by a team of operator accounts (``suture.scheduler.team``) that sign in with tokens."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import Engine, func, inspect, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from suture import keys
from suture.keys import PrivateKey
from suture.scheduler import migrate
from suture.scheduler.api.app import create_app
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.models import Device, Operator, Release, RolloutDevice
from suture.scheduler.services.audit import AuditKey, write_audit_key
from suture.scheduler.team import Team, sign_in_team
from suture.ward.clock import ScaledClock
from suture.ward.errors import WardServerError
from suture.ward.fleet import Faults, SimulatedDevice


@dataclass
class SchedulerSettings:
    """What the ward chooses for its scheduler (simulated seconds)."""

    poll_interval_s: int = 10
    poll_jitter_s: int = 2
    advance_interval_s: float = 0.25  # real seconds between rollout advancement passes


def free_socket() -> socket.socket:
    """A listening-ready TCP socket bound to 127.0.0.1 on a port the kernel picked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _require_empty(engine: Engine, url: str) -> None:
    """The ward makes its own operators, devices and releases: a database that holds any
    already is refused before anything is written to it (its schema not migrated either)."""
    tables = (("operators", Operator), ("devices", Device), ("releases", Release))
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        held = {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in tables if table.__tablename__ in present}
    if any(held.values()):
        what = ", ".join(f"{name}: {n}" for name, n in held.items() if n)
        where = make_url(url).render_as_string()  # the password hidden
        raise WardServerError(f"the ward needs an empty database; {where} holds {what}")


class WardScheduler:
    """Start with :meth:`start`, stop with :meth:`stop` (also a context manager)."""

    def __init__(self, workdir: Path, clock: ScaledClock, vendor_key: PrivateKey,
                 options: SchedulerSettings | None = None,
                 public_url: str | None = None, database_url: str | None = None) -> None:
        self.workdir = workdir
        #: The scheduler's database: a SQLite file in ``workdir`` unless given (a PostgreSQL
        #: database, migrated here).
        self.database_url = database_url or f"sqlite:///{workdir / 'scheduler.db'}"
        self.clock = clock
        self.options = options or SchedulerSettings()
        self.sock = free_socket()
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.public_url = public_url or self.url
        self.signing_key = keys.generate_private_key("ES256")
        self.vendor_key = vendor_key
        self.root_secret = keys_hex(32)
        workdir.mkdir(parents=True, exist_ok=True)
        keys.write_key_pair(self.signing_key, workdir / "scheduler-key.pem")
        keys.write_key_pair(vendor_key, workdir / "vendor-key.pem")
        self.engine: Engine = make_engine(self.database_url)
        try:
            _require_empty(self.engine, self.database_url)
        except WardServerError:
            self.engine.dispose()
            self.sock.close()
            raise
        migrate.upgrade(self.engine)
        self.audit_key = AuditKey.generate()
        write_audit_key(workdir / "audit-key.json", self.audit_key)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine,
                                                                    audit_key=self.audit_key)
        #: The operators: an administrator, one account per role, two approvers.
        self.team: Team = sign_in_team(self.sessions, prefix="ward", now=clock.now())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def settings(self) -> Settings:
        return Settings(
            environment="production",
            database_url=self.database_url,
            signing_key_path=self.workdir / "scheduler-key.pem",
            trust_anchor_paths=[self.workdir / "vendor-key.pub.pem"],
            device_root_secret=self.root_secret,
            public_url=self.public_url,
            poll_interval_s=self.options.poll_interval_s,
            poll_jitter_s=self.options.poll_jitter_s,
            advance_interval_s=self.options.advance_interval_s,
            device_clock_skew_s=600,
            audit_key_path=self.workdir / "audit-key.json",
            audit_checkpoint_path=self.workdir / "audit-checkpoints.jsonl",
        )

    def start(self) -> Settings:
        settings = self.settings()
        app = create_app(settings, clock=self.clock, engine=self.engine,
                         audit_key=self.audit_key)
        config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="on",
                                timeout_keep_alive=2, backlog=512)
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").disabled = True
        self.sock.listen(512)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise WardServerError("the scheduler did not start within 20 s")
            time.sleep(0.02)
        self.settings_used = settings
        return settings

    def ui_account(self, name: str = "ward-observer") -> tuple[str, str]:
        """An account that signs in to the operator UI (at ``url``) with a password, to watch
        the ward: it sees the fleet, releases, rollouts and the audit log, and changes
        nothing. Returns (name, password)."""
        import secrets

        from suture.scheduler.authz import Role
        from suture.scheduler.services import operators

        password = secrets.token_urlsafe(12)
        operators.add_operator(self.sessions(), name=name,
                               roles=[Role.VIEWER.value, Role.AUDITOR.value], password=password,
                               actor=self.team.administrator, now=self.clock.now())
        return name, password

    def rollout_entries(self, rollout_id: int) -> dict[str, RolloutDevice]:
        """The rollout's device entries (state, step, detail) by device id, as they are now."""
        with self.sessions() as s:
            rows = s.execute(select(RolloutDevice).where(
                RolloutDevice.rollout_id == rollout_id)).scalars().all()
            return {e.device_id: e for e in rows}

    def run_fleet_until(self, fleet: Iterable[SimulatedDevice], done: Callable[[], bool], *,
                        faults: Faults | None = None, timeout_s: float = 180) -> bool:
        """Start the fleet's agents on this scheduler's clock, wait until ``done()`` holds (or
        ``timeout_s`` passes), then stop them; returns whether it held."""
        devices = list(fleet)
        for dev in devices:
            dev.start(self.clock.device_spec(), faults or Faults())
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not done():
                time.sleep(0.2)
        finally:
            for dev in devices:
                dev.request_stop()
            for dev in devices:
                dev.join(30)
        return done()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
        self.engine.dispose()

    def __enter__(self) -> WardScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def keys_hex(n: int) -> str:
    import secrets

    return secrets.token_hex(n)
