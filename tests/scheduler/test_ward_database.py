"""`suture sim --database-url`: the ward's scheduler on an empty PostgreSQL database (the
deployment's engine) updates the ward as on its own SQLite file; a database that already
holds a scheduler's operators or devices is refused, before any device is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sched_world import blank_postgres_database
from sqlalchemy import func, select
from suture.cli.main import app
from suture.scheduler.db import make_engine
from suture.scheduler.models import Device
from typer.testing import CliRunner


@pytest.mark.postgres
def test_a_ward_on_postgresql(tmp_path: Path) -> None:
    with blank_postgres_database("suture_ward_cli") as url:
        first = CliRunner().invoke(app, ["sim", "--devices", "3", "--json", "--database-url", url,
                                         "--workdir", str(tmp_path / "w1")])
        assert first.exit_code == 0, first.output
        data = json.loads(first.stdout.strip().splitlines()[-1])
        assert (data["devices"], data["updated"], data["bricked"]) == (3, 3, 0)
        assert data["rollout_state"] == "completed"
        engine = make_engine(url)
        try:
            with engine.connect() as conn:  # the devices are in PostgreSQL, not in a file
                assert conn.execute(select(func.count()).select_from(Device)).scalar_one() == 3
        finally:
            engine.dispose()
        assert not (tmp_path / "w1" / "scheduler" / "scheduler.db").exists()

        again = CliRunner().invoke(app, ["sim", "--devices", "3", "--json", "--database-url",
                                         url, "--workdir", str(tmp_path / "w2")])
        assert again.exit_code == 1, again.output
        assert "the ward needs an empty database" in again.output
        assert "devices: 3" in again.output
        assert not (tmp_path / "w2" / "devices").exists()
