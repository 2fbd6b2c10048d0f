"""Provisioning enrolls the device at the real scheduler app (operator API) and writes the
credential it issues into the board's NVM; decommissioning erases the board, checks the erase,
signs a record of it and marks the device at the scheduler, which keeps the record, revokes the
credential and never registers the id again."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from suture import keys
from suture.boardops.decommission import (
    RECORD_TYPE,
    DecommissionError,
    decommission,
    open_record,
)
from suture.boardops.provision import ProvisionRequest, provision
from suture.boardops.scheduler_client import (
    DeviceExistsError,
    SchedulerClient,
    SchedulerError,
)
from suture.boardops.session import open_board
from suture.boards import load_board
from suture.cose.sign1 import sign1 as cose_sign1
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
    # the device key stays on the board; the scheduler holds its public point to check reports
    with open_board(board, device_dir=tmp_path / "dev") as s:
        scalar = s.repl.eval("bytes(__import__('loader.api').api.nvm().get('id.key')[1])")
    point = keys.public_key_bytes(ec.derive_private_key(int.from_bytes(scalar, "big"),
                                                        ec.SECP256R1()).public_key())
    assert scheduler.device("ward2-bed4")["public_key"] == point.hex()
    operator = keys.generate_private_key("ES256")
    with open_board(board, device_dir=tmp_path / "dev") as s:
        outcome = decommission(s, reboot=s.reset, scheduler=scheduler, signing_key=operator,
                               record_out=tmp_path / "record.cose", now=1_700_000_000)
        assert outcome.reported
        assert device_ops.status(s.repl)["nvm_keys"] == []
    assert outcome.record is not None
    assert (tmp_path / "record.cose").read_bytes() == outcome.record
    payload = open_record(outcome.record, operator.public_key())
    assert payload["type"] == RECORD_TYPE
    assert (payload["device_id"], payload["board"], payload["time"]) == ("ward2-bed4", "sim",
                                                                         1_700_000_000)
    assert payload["before"]["installed_version"] == 1
    assert "id.key" in payload["before"]["nvm_keys"]
    assert [(e["region"], e["size"]) for e in payload["erased"]] == [
        ("journal", 0x2000), ("nvm", 0xE000), ("staging", 0x1F8000), ("backup", 0x1F8000)]
    assert payload["bytes_erased"] == 0x2000 + 0xE000 + 2 * 0x1F8000
    assert payload["after"] == {"state": "IDLE", "installed_version": 0, "device_id": None,
                                "nvm_keys": [], "journal": []}
    with pytest.raises(DecommissionError, match="does not verify"):
        open_record(outcome.record, keys.generate_private_key("ES256").public_key())
    marked = scheduler.device("ward2-bed4")
    assert marked["decommissioned_at"] is not None
    event = marked["history"][-1]
    assert event["kind"] == "decommissioned"
    assert event["detail"]["record_sha256"] == hashlib.sha256(outcome.record).hexdigest()
    with pytest.raises(SchedulerError, match="decommissioned; its id is not reused"):
        scheduler.register(device_id="ward2-bed4", board="sim", vendor_id=str(VENDOR_ID),
                           class_id=str(CLASS_ID), installed={"app": 1})
    with open_board(board, device_dir=tmp_path / "dev") as s, pytest.raises(
        DecommissionError, match="no device identity to report"
    ):
        decommission(s, reboot=s.reset, scheduler=scheduler)


def test_the_scheduler_keeps_only_a_record_of_the_device(
    scheduler: SchedulerClient,
) -> None:
    scheduler.register(device_id="icu-pump-2", board="sim", vendor_id=str(VENDOR_ID),
                       class_id=str(CLASS_ID), installed={"app": 1})
    with pytest.raises(SchedulerError, match="not a COSE_Sign1"):
        scheduler.decommission("icu-pump-2", record=b"not a record")
    other = cose_sign1(cbor2.dumps({"type": RECORD_TYPE, "device_id": "icu-pump-9"}),
                       keys.generate_private_key("ES256"))
    with pytest.raises(SchedulerError, match="of device 'icu-pump-9', not 'icu-pump-2'"):
        scheduler.decommission("icu-pump-2", record=other)
    assert scheduler.device("icu-pump-2")["decommissioned_at"] is None


def test_an_unreachable_scheduler_stops_decommissioning_before_any_erase(
    tmp_path: Path,
) -> None:
    vendor = keys.generate_private_key("ES256")
    request = ProvisionRequest(app_bundle=example_app(1), app_version=1,
                               vendor_keys=[keys.public_key_bytes(vendor.public_key())],
                               vendor_id=uuid.UUID(str(VENDOR_ID)),
                               class_id=uuid.UUID(str(CLASS_ID)), device_id="ward2-bed5")
    board = load_board("sim")
    with open_board(board, device_dir=tmp_path / "dev",
                    new_identity=identity_for(keys.public_key_bytes(vendor.public_key()))) as s:
        provision(s, request)
    before = (tmp_path / "dev" / "external.bin").read_bytes()
    with open_board(board, device_dir=tmp_path / "dev") as s, pytest.raises(
        SchedulerError, match="cannot reach the scheduler"
    ):
        decommission(s, reboot=s.reset, scheduler=SchedulerClient("http://127.0.0.1:9", "t"))
    assert (tmp_path / "dev" / "external.bin").read_bytes() == before
