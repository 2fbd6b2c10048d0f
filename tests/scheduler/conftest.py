"""Fixtures for the scheduler tests: databases (SQLite, and PostgreSQL for the tests marked
``postgres``), a manual clock, keys, a world of simulated devices, the HTTP app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sched_world import (
    AUDIT_KEY,
    ROOT_SECRET,
    Api,
    World,
    blank_postgres_database,
    fresh_postgres,
    migrated_sqlite,
    own_postgres_database,
)
from sqlalchemy import Engine
from suture.keys import PrivateKey, generate_private_key, write_key_pair
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.services.audit import write_audit_key
from suture.scheduler.services.schedules import ScheduleContext
from typer.testing import CliRunner


@pytest.fixture(scope="session")
def scheduler_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def vendor_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "scheduler.db")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test process, migrated once; dropped at the end."""
    yield from own_postgres_database("suture_sched")


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    path = tmp_path / "scheduler.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
           ) -> Iterator[Engine]:
    """The scenario tests run on both databases."""
    if request.param == "sqlite":
        path = tmp_path / "scheduler.db"
        shutil.copyfile(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        eng = fresh_postgres(request.getfixturevalue("pg_database"))
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ward_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The database of a ``WardScheduler`` (the end-to-end tests on the simulated board run on
    both): None for its own SQLite file, else an empty PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        yield None
        return
    with blank_postgres_database("suture_ward") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (no revision applied yet), for the migrations' tests."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'blank.db'}")
        yield eng
        eng.dispose()
        return
    with blank_postgres_database("suture_mig") as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_767_225_600)  # 2026-01-01T00:00:00Z, a Thursday


@pytest.fixture
def ctx(scheduler_key: PrivateKey) -> ScheduleContext:
    return ScheduleContext(key=scheduler_key, public_url="http://127.0.0.1:8640",
                           poll_interval_s=900, poll_jitter_s=120, forced_window_s=3600)


@pytest.fixture
def world(engine: Engine, clock: ManualClock, ctx: ScheduleContext, scheduler_key: PrivateKey,
          vendor_key: PrivateKey, tmp_path: Path) -> World:
    return World(make_session_factory(engine, audit_key=AUDIT_KEY), clock, ctx, scheduler_key,
                 vendor_key, tmp_path)


@pytest.fixture
def settings(tmp_path: Path, scheduler_key: PrivateKey, vendor_key: PrivateKey) -> Settings:
    key_path = tmp_path / "scheduler-key.pem"
    write_key_pair(scheduler_key, key_path)
    vendor_path = tmp_path / "vendor-key.pem"
    write_key_pair(vendor_key, vendor_path)
    audit_key_path = tmp_path / "audit-key.json"
    if not audit_key_path.exists():
        write_audit_key(audit_key_path, AUDIT_KEY)
    return Settings(environment="production", database_url="sqlite:///unused.db",
                    signing_key_path=key_path, device_root_secret=ROOT_SECRET.hex(),
                    trust_anchor_paths=[tmp_path / "vendor-key.pub.pem"],
                    advance_interval_s=0, audit_key_path=audit_key_path)


@pytest.fixture
def api(engine: Engine, settings: Settings, clock: ManualClock, world: World) -> Iterator[Api]:
    """The HTTP app on the world's database, with the world's operators' tokens."""
    app = create_app(settings, clock=clock, engine=engine)
    with TestClient(app) as client:
        yield Api(client, world.tokens, clock)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI as an operator runs it in a fresh folder (``tmp_path``): no token, no scheduler
    settings from the environment, a wide terminal for tables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home-config"))
    for name in ("SUTURE_TOKEN", "SUTURE_TOKEN_FILE", "SUTURE_SCHEDULER_CONFIG",
                 "SUTURE_SCHEDULER_DEVICE_ROOT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()
