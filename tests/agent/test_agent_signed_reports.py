"""The agent signs its reports with the device key (NVM id.key) on the unix port: every report
the fake scheduler receives carries a Suture-Signature that the scheduler's own check
(suture.scheduler.credentials) accepts for the device's public key and refuses for another
key, and carries the device's trust-store versions; a rotation applied from a schedule is
reported (the new version) at the next cycle. A device without id.key sends its MAC alone."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from agent_env import DEVICE_DIR, DEVICE_ID, FakeScheduler
from cryptography.hazmat.primitives.asymmetric import ec
from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
from suture.keys import PrivateKey
from suture.scheduler import credentials
from suture.scheduler.schedule_doc import Schedule, sign_schedule
from suture.sim.testing import Provisioned

PATH = f"/api/v1/devices/{DEVICE_ID}/reports"


def _idle_schedule(fake: FakeScheduler, key: PrivateKey, number: int,
                   trust: bytes | None = None) -> None:
    now = int(time.time())
    fake.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=number, issued_at=now, action=0, next_poll=now + 1,
        poll_interval=1, trust_update=trust), key)


def _run(dev: Provisioned, seconds: float) -> dict[str, Any]:
    r = dev.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), str(seconds)])
    assert r.exit_code == 0, r.stdout + r.stderr
    return r.result


def _posted(fake: FakeScheduler) -> list[tuple[dict[str, str], bytes]]:
    posts = [h for m, p, h in fake.requests if m == "POST" and p == PATH]
    assert len(posts) == len(fake.raw_reports)
    return list(zip(posts, fake.raw_reports, strict=True))


def _verifies(point: bytes, headers: dict[str, str], body: bytes) -> bool:
    req = credentials.parse_headers(headers.get("Suture-Device"), headers.get("Suture-Time"),
                                    headers.get("Suture-Counter"), headers.get("Suture-MAC"))
    return credentials.check_signature(
        point, req, headers.get("Suture-Signature"), method="POST", path=PATH,
        body_digest_hex=hashlib.sha256(body).hexdigest())


def test_reports_are_signed_by_the_device_key(agent_device: Provisioned,
                                              fake_scheduler: FakeScheduler,
                                              scheduler_key: PrivateKey) -> None:
    dev = agent_device
    key = ec.generate_private_key(ec.SECP256R1())
    put = dev.device.run(["nvm-put", "id.key",
                          key.private_numbers().private_value.to_bytes(32, "big").hex(), "1"])
    assert put.ok, put.stdout + put.stderr
    new_scheduler_key = ec.generate_private_key(ec.SECP256R1())
    rotation = sign_trust_update(TrustUpdate("scheduler", 1, (
        sec1_point(scheduler_key), sec1_point(new_scheduler_key))), scheduler_key)
    _idle_schedule(fake_scheduler, scheduler_key, 1, trust=rotation)
    _run(dev, 4)
    posted = _posted(fake_scheduler)
    assert len(posted) >= 2, fake_scheduler.reports
    other = sec1_point(ec.generate_private_key(ec.SECP256R1()))
    for headers, body in posted:
        assert _verifies(sec1_point(key), headers, body), headers
        assert not _verifies(other, headers, body)
        assert not _verifies(sec1_point(key), headers, body + b" ")
    # what it held at boot, then the rotation the schedule carried, reported once applied
    assert fake_scheduler.reports[0]["trust"] == {"vendor": 0, "scheduler": 0}
    assert fake_scheduler.reports[-1]["trust"] == {"vendor": 0, "scheduler": 1}


def test_a_device_without_a_key_sends_its_mac_alone(agent_device: Provisioned,
                                                    fake_scheduler: FakeScheduler,
                                                    scheduler_key: PrivateKey) -> None:
    _idle_schedule(fake_scheduler, scheduler_key, 1)
    _run(agent_device, 2)
    posted = _posted(fake_scheduler)
    assert posted
    for headers, _ in posted:
        assert "Suture-MAC" in headers
        assert "Suture-Signature" not in headers
