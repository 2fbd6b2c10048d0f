"""The agent's SUIT reports against a fake scheduler on the unix port (docs/formats/suit-report.md):
a payload whose digest does not match ends in a SUIT report sent just before the `failed`
report, naming the manifest's image-match condition as the failing command; a device without
a key sends a COSE_Mac0 under the report MAC key derived from its secret (not the request MAC's
key), a keyed device a COSE_Sign1 that verifies with its key."""

from __future__ import annotations

import pytest
from agent_env import DEVICE_DIR, DEVICE_ID, FakeScheduler, serve_release
from cryptography.hazmat.primitives.asymmetric import ec
from suture.cose.mac0 import SymmetricKey
from suture.keys import PrivateKey
from suture.scheduler.credentials import suit_report_key
from suture.sim.testing import Provisioned, example_app
from suture.suit import SuitReportError
from suture.suit.report import report_summary, verify_report


def _fail_a_download(dev: Provisioned, fake: FakeScheduler, vendor_key: PrivateKey,
                     scheduler_key: PrivateKey) -> None:
    good = example_app(2, filler=3000)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    serve_release(fake, vendor_key, scheduler_key, action=2, payload=good, served=bytes(bad))
    r = dev.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), "3"])
    assert r.exit_code == 0, r.stdout + r.stderr


def _posts(fake: FakeScheduler) -> list[str]:
    return [path.rsplit("/", 1)[-1] for method, path, _ in fake.requests if method == "POST"]


def _check_failure(summary: dict[str, object], fake: FakeScheduler) -> None:
    assert summary["succeeded"] is False
    result = summary["result"]
    assert isinstance(result, dict)
    assert (result["code"], result["reason"]) == (31, "condition-failed")
    assert result["record"]["properties"] == {"command": "condition-image-match"}
    device = summary["device"]
    assert isinstance(device, dict)
    assert (device["state"], device["rollout_id"], device["release_id"]) == ("failed", 9, 5)
    # each sent just before the failed report it belongs to (the fake scheduler keeps asking
    # for the same download, so the agent tries again and fails again), and for no other
    posts = _posts(fake)
    reports = list(zip([i for i, p in enumerate(posts) if p == "reports"], fake.reports,
                       strict=True))
    # A report sent again right after itself (its answer lost to a timeout on a loaded
    # machine) is the same report, not another failure.
    failed = [at for k, (at, r) in enumerate(reports) if r["state"] == "failed"
              and not (k and reports[k - 1] == (at - 1, r))]
    assert failed
    assert [i + 1 for i, p in enumerate(posts) if p == "suit-reports"] == failed
    assert len(set(fake.suit_reports)) == 1  # the same bytes each time


def test_a_device_without_a_key_macs_its_report(agent_device: Provisioned,
                                                fake_scheduler: FakeScheduler,
                                                vendor_key: PrivateKey,
                                                scheduler_key: PrivateKey) -> None:
    _fail_a_download(agent_device, fake_scheduler, vendor_key, scheduler_key)
    body = fake_scheduler.suit_reports[0]
    secret = bytes(range(32))  # the device's id.credential (conftest)
    verified = verify_report(body, [SymmetricKey(suit_report_key(secret, DEVICE_ID))])
    assert verified.kind == "COSE_Mac0"
    _check_failure(report_summary(verified.report), fake_scheduler)
    with pytest.raises(SuitReportError):  # the request MAC's key itself does not verify it
        verify_report(body, [SymmetricKey(secret)])


def test_a_keyed_device_signs_its_report(agent_device: Provisioned,
                                         fake_scheduler: FakeScheduler,
                                         vendor_key: PrivateKey,
                                         scheduler_key: PrivateKey) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    put = agent_device.device.run(["nvm-put", "id.key", key.private_numbers()
                                   .private_value.to_bytes(32, "big").hex(), "1"])
    assert put.ok, put.stdout + put.stderr
    _fail_a_download(agent_device, fake_scheduler, vendor_key, scheduler_key)
    body = fake_scheduler.suit_reports[0]
    verified = verify_report(body, [key.public_key()])
    assert verified.kind == "COSE_Sign1"
    _check_failure(report_summary(verified.report), fake_scheduler)
