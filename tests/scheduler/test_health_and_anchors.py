"""`/healthz` answers for the database, not only the process; a running scheduler takes changed
trust anchors from its settings file at once and names the settings that wait for a restart."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sched_world import ACCOUNTS, World, make_release, release_upload
from sqlalchemy import Engine
from suture.keys import generate_private_key, key_id, write_key_pair
from suture.scheduler.api.app import create_app
from suture.scheduler.clock import ManualClock
from suture.scheduler.config import Settings, write_config_file
from suture.scheduler.db import make_engine
from suture.scheduler.services import audit


def test_healthz_reports_the_database(engine: Engine, settings: Settings, clock: ManualClock,
                                      tmp_path: Path) -> None:
    with TestClient(create_app(settings, clock=clock, engine=engine)) as client:
        ok = client.get("/healthz")
    assert ok.status_code == 200
    assert ok.json()["status"] == "ok"
    assert ok.json()["database"]["ok"] is True
    assert ok.json()["database"]["schema"] == ok.json()["database"]["expected_schema"]
    blank = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    with TestClient(create_app(settings, clock=clock, engine=blank)) as client:
        stale = client.get("/healthz")
    assert stale.status_code == 503
    assert "schema None, this version needs" in stale.json()["database"]["error"]
    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, clock=clock, engine=gone)) as client:
        down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["database"]["ok"] is False


def test_trust_anchors_change_while_it_runs(world: World, engine: Engine, settings: Settings,
                                            clock: ManualClock, tmp_path: Path) -> None:
    other = generate_private_key("ES256")
    write_key_pair(other, tmp_path / "other-vendor.pem")
    config = tmp_path / "scheduler.env"
    values: dict[str, object] = {
        k: (str(v) if not isinstance(v, list) else [str(p) for p in v])
        for k, v in settings.model_dump().items() if v is not None}
    write_config_file(config, values)
    upload = release_upload(*make_release(other, tmp_path, 5))
    alice = {"Authorization": f"Bearer {world.tokens['alice']}"}
    assert "alice" in ACCOUNTS
    app = create_app(settings, clock=clock, engine=engine, config_path=config)
    with TestClient(app) as client:
        refused = client.post("/api/v1/releases", headers=alice, json=upload)
        assert refused.status_code == 422
        assert refused.json()["error"] == "release_not_verified"
        write_config_file(config, {**values,
                                   "trust_anchor_paths": [str(tmp_path / "other-vendor.pub.pem")],
                                   "public_url": "https://sched.example"})
        imported = client.post("/api/v1/releases", headers=alice, json=upload)
        assert imported.status_code == 201, imported.text
        info = client.get("/api/v1/scheduler", headers=alice).json()
        assert [a["key_id"] for a in info["trust_anchors"]] == [key_id(other.public_key()).hex()]
        assert info["restart_required"] == ["public_url"]
        health = client.get("/healthz").json()
        assert (health["status"], health["restart_required"]) == ("degraded", ["public_url"])
    changes = [r for r in audit.recent(world.session(), limit=100)
               if r.action == "scheduler.trust_anchors"]
    assert len(changes) == 1
    assert key_id(other.public_key()).hex() in changes[0].detail
