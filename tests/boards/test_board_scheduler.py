"""Provisioning enrolls the device at the real scheduler app (operator API) and writes the
credential it issues into the board's NVM; decommissioning marks the record at the scheduler
and revokes the credential."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from suture import keys
from suture.boardops.provision import ProvisionError, ProvisionRequest, decommission, provision
from suture.boardops.scheduler_client import (
    DeviceExistsError,
    SchedulerClient,
    SchedulerError,
)
from suture.boardops.session import open_board
from suture.boards import load_board
from suture.devicectl import device_ops
from suture.scheduler import credentials, migrate
from suture.scheduler.api.app import create_app
from suture.scheduler.config import Settings
from suture.scheduler.db import make_engine, make_session_factory
from suture.scheduler.services.audit import AuditKey, write_audit_key
from suture.scheduler.team import sign_in_team
from suture.sim.testing import CLASS_ID, VENDOR_ID, example_app, identity_for

ROOT_SECRET = bytes(range(32))


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[SchedulerClient]:
    key = keys.generate_private_key("ES256")
    keys.write_key_pair(key, tmp_path / "scheduler-key.pem")
    engine = make_engine(f"sqlite:///{tmp_path / 'scheduler.db'}")
    migrate.upgrade(engine)
    audit_key = AuditKey.generate()
    write_audit_key(tmp_path / "audit-key.json", audit_key)
    settings = Settings(environment="production", database_url="sqlite:///unused.db",
                        signing_key_path=tmp_path / "scheduler-key.pem",
                        device_root_secret=ROOT_SECRET.hex(), advance_interval_s=0,
                        audit_key_path=tmp_path / "audit-key.json")
    team = sign_in_team(make_session_factory(engine, audit_key=audit_key), prefix="biomed",
                        now=int(time.time()))  # the app's clock
    token = team.tokens[team.device_manager.name]
    with TestClient(create_app(settings, engine=engine)) as client:
        yield SchedulerClient("http://testserver", token, client=client)
    engine.dispose()


def test_register_rotate_and_decommission(scheduler: SchedulerClient) -> None:
    cred = scheduler.register(device_id="icu-pump-1", board="rpi-pico",
                              vendor_id=str(VENDOR_ID), class_id=str(CLASS_ID),
                              installed={"app": 1})
    assert cred.secret == credentials.derive_secret(ROOT_SECRET, "icu-pump-1", cred.generation)
    with pytest.raises(DeviceExistsError, match=r"already registered .* --force"):
        scheduler.register(device_id="icu-pump-1", board="rpi-pico", vendor_id=str(VENDOR_ID),
                           class_id=str(CLASS_ID), installed={"app": 1})
    rotated = scheduler.register(device_id="icu-pump-1", board="rpi-pico",
                                 vendor_id=str(VENDOR_ID), class_id=str(CLASS_ID),
                                 installed={"app": 1}, rotate=True)
    assert rotated.generation == cred.generation + 1
    record = scheduler.decommission("icu-pump-1")
    assert record["decommissioned_at"] is not None
    after = scheduler.device("icu-pump-1")
    assert after["credential_generation"] == rotated.generation + 1  # the board's secret revoked
    assert after["history"]  # the record keeps its history


def test_bad_token_and_unreachable_scheduler(scheduler: SchedulerClient) -> None:
    bad = SchedulerClient("http://testserver", "wrong", client=scheduler.client)
    with pytest.raises(SchedulerError, match=r"refused POST /api/v1/devices \(401\)"):
        bad.register(device_id="x", board="sim", vendor_id=str(VENDOR_ID),
                     class_id=str(CLASS_ID), installed={})
    offline = SchedulerClient("http://127.0.0.1:9", "t")
    with pytest.raises(SchedulerError, match=r"cannot reach the scheduler at http://127\.0\.0\.1:9"):
        offline.device("x")


def test_provision_registers_and_writes_the_credential(
    scheduler: SchedulerClient, tmp_path: Path
) -> None:
    vendor = keys.generate_private_key("ES256")
    trusted = keys.public_key_bytes(vendor.public_key())
    sched_pub = keys.public_key_bytes(keys.generate_private_key("ES256").public_key())
    request = ProvisionRequest(app_bundle=example_app(1), app_version=1, vendor_keys=[trusted],
                               vendor_id=uuid.UUID(str(VENDOR_ID)),
                               class_id=uuid.UUID(str(CLASS_ID)),
                               scheduler_url="http://testserver", scheduler_keys=[sched_pub],
                               device_id="ward2-bed4")
    board = load_board("sim")
    with open_board(board, device_dir=tmp_path / "dev", new_identity=identity_for(trusted)) as s:
        result = provision(s, request, scheduler=scheduler)
        assert result.changed
        assert result.credential is not None
        nvm = s.repl.eval(
            "[(k, bytes(v[1])) for k, v in ((k, __import__('loader.api').api.nvm().get(k)) "
            "for k in ('id.credential', 'id.scheduler', 'trust.scheduler', 'trust.vendor'))]"
        )
    assert dict(nvm) == {
        "id.credential": result.credential.secret,
        "id.scheduler": b"http://testserver",
        "trust.scheduler": sched_pub,
        "trust.vendor": trusted,
    }
    assert scheduler.device("ward2-bed4")["installed"] == {"app": 1}
    with open_board(board, device_dir=tmp_path / "dev") as s:
        outcome = decommission(s, scheduler=scheduler)
        assert outcome.reported
        assert device_ops.status(s.repl)["nvm_keys"] == []
    assert scheduler.device("ward2-bed4")["decommissioned_at"] is not None
    with open_board(board, device_dir=tmp_path / "dev") as s, pytest.raises(
        ProvisionError, match="no device identity to report"
    ):
        decommission(s, scheduler=scheduler)
