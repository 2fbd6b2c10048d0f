"""Fixtures of the UI tests: the scheduler's world of tests/scheduler (database, clock, keys,
operator accounts, simulated devices), its accounts given passwords, and the app with its UI."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scheduler"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vendor_services"))

from sched_world import (
    AUDIT_KEY,
    ROOT_SECRET,
    World,
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

#: The hospital's zone in the UI tests (an offset from UTC shows that times are converted).
ZONE = "Europe/Berlin"


@pytest.fixture(scope="session")
def ui_scheduler_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def ui_vendor_key() -> PrivateKey:
    return generate_private_key("ES256")


@pytest.fixture(scope="session")
def ui_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite(tmp_path_factory.mktemp("ui-template") / "scheduler.db")


@pytest.fixture(scope="session")
def ui_pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test process's own, migrated once; dropped at the end."""
    yield from own_postgres_database("suture_ui")


@pytest.fixture
def ui_engine(request: pytest.FixtureRequest, tmp_path: Path, ui_sqlite_template: Path
              ) -> Iterator[Engine]:
    """SQLite; PostgreSQL for a test that asks for it (``indirect`` parameter "postgres")."""
    if getattr(request, "param", "sqlite") == "postgres":
        engine = fresh_postgres(request.getfixturevalue("ui_pg_database"))
    else:
        path = tmp_path / "scheduler.db"
        shutil.copyfile(ui_sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def ui_clock() -> ManualClock:
    return ManualClock(1_767_225_600)  # 2026-01-01T00:00:00Z = 01:00 CET


@pytest.fixture
def ui_world(ui_engine: Engine, ui_clock: ManualClock, ui_scheduler_key: PrivateKey,
             ui_vendor_key: PrivateKey, tmp_path: Path) -> World:
    """The scheduler world of tests/scheduler (its accounts sign in with tokens)."""
    ctx = ScheduleContext(key=ui_scheduler_key, public_url="http://127.0.0.1:8640",
                          poll_interval_s=900, poll_jitter_s=120, forced_window_s=3600)
    return World(make_session_factory(ui_engine, audit_key=AUDIT_KEY), ui_clock, ctx,
                 ui_scheduler_key, ui_vendor_key, tmp_path)


@pytest.fixture
def ui_settings(tmp_path: Path, ui_scheduler_key: PrivateKey, ui_vendor_key: PrivateKey
                ) -> Settings:
    key_path = tmp_path / "scheduler-key.pem"
    write_key_pair(ui_scheduler_key, key_path)
    vendor_path = tmp_path / "vendor-key.pem"
    write_key_pair(ui_vendor_key, vendor_path)
    audit_key_path = tmp_path / "audit-key.json"
    write_audit_key(audit_key_path, AUDIT_KEY)
    return Settings(environment="production", database_url="sqlite:///unused.db",
                    signing_key_path=key_path, device_root_secret=ROOT_SECRET.hex(),
                    trust_anchor_paths=[tmp_path / "vendor-key.pub.pem"],
                    advance_interval_s=0, audit_key_path=audit_key_path, time_zone=ZONE)


@pytest.fixture
def ui_client(ui_engine: Engine, ui_settings: Settings, ui_clock: ManualClock,
              ui_world: World) -> Iterator[TestClient]:
    app = create_app(ui_settings, clock=ui_clock, engine=ui_engine, audit_key=AUDIT_KEY)
    with TestClient(app, follow_redirects=False) as client:
        yield client
