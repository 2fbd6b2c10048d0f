"""Trust-store updates carried by the schedule (key 22, docs/formats/trust-store.md), applied by
the agent on the unix port against a fake scheduler: a vendor rotation lets a release signed by
the new key install in the same schedule; a scheduler rotation moves the agent to the new
schedule key and refuses the old one; an update not signed by a current anchor is reported and
changes nothing."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from agent_env import DEVICE_DIR, DEVICE_ID, FakeScheduler, agent_events
from suture import keys
from suture.formats import error_codes
from suture.formats.trust_store import TrustUpdate, sec1_point, sign_trust_update
from suture.keys import PrivateKey
from suture.scheduler.schedule_doc import Artifact, Schedule, sign_schedule
from suture.sim.journal import State
from suture.sim.testing import Provisioned, example_app, sign_payload

CODES = error_codes.load()
# A run that ends in the reset to install ends there; the budget only bounds a run that does not.
RESET_BUDGET_S = 15


def _run(dev: Provisioned, seconds: float) -> tuple[int, dict[str, Any]]:
    r = dev.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), str(seconds)])
    print(r.stdout, r.stderr)  # the agent's events, shown when a test fails
    failed = [ev for ev in agent_events(r.stdout) if ev.get("where") == "cycle"]
    assert not failed, failed  # the rotation and the release fit in one cycle, memory too
    return r.exit_code, r.result


def _nvm(dev: Provisioned) -> dict[str, Any]:
    rep = dev.device.run(["report"]).report()["nvm"]
    assert isinstance(rep, dict)
    return rep


def _schedule(fake: FakeScheduler, key: PrivateKey, number: int, *, trust: bytes | None = None,
              release: tuple[bytes, PrivateKey] | None = None) -> None:
    now = int(time.time())
    art = None
    if release is not None:
        payload, signer = release
        envelope = sign_payload(payload, 2, signer)
        art = Artifact(release_id=5, component="app", sequence_number=2,
                       envelope_uri=fake.url + "/api/v1/releases/5/envelope",
                       envelope_digest=hashlib.sha256(envelope).digest(),
                       envelope_size=len(envelope),
                       payload_uri=fake.url + "/api/v1/releases/5/payload",
                       payload_digest=hashlib.sha256(payload).digest(),
                       payload_size=len(payload))
        fake.envelope = envelope
        fake.payload = payload
    fake.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=number, issued_at=now, action=2 if art else 0,
        next_poll=now + 1, poll_interval=1, rollout_id=9, artifact=art, trust_update=trust),
        key)


def test_a_vendor_rotation_lets_the_new_key_sign_the_release(
        agent_device: Provisioned, fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
        scheduler_key: PrivateKey) -> None:
    new = keys.generate_private_key("ES256")
    rotation = sign_trust_update(TrustUpdate("vendor", 1, (sec1_point(new),)), vendor_key)
    _schedule(fake_scheduler, scheduler_key, 3, trust=rotation,
              release=(example_app(2), new))
    code, _ = _run(agent_device, RESET_BUDGET_S)
    assert code == 98  # reset into the loader to install
    assert _nvm(agent_device)["trust.vendor"] == [2, "00000001" + sec1_point(new).hex()]
    r = agent_device.device.run(["boot"], ["report"])
    assert r.ok, r.stdout
    assert r.report()["installed_version"] == 2
    assert r.report()["state"] == "TRIAL"


def test_a_release_of_the_revoked_key_is_refused_after_the_rotation(
        agent_device: Provisioned, fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
        scheduler_key: PrivateKey) -> None:
    new = keys.generate_private_key("ES256")
    rotation = sign_trust_update(TrustUpdate("vendor", 1, (sec1_point(new),)), vendor_key)
    _schedule(fake_scheduler, scheduler_key, 3, trust=rotation,
              release=(example_app(2), vendor_key))
    code, _ = _run(agent_device, 3)
    assert code == 0  # nothing to install
    assert _nvm(agent_device)["trust.vendor"] == [2, "00000001" + sec1_point(new).hex()]
    assert State.STAGED not in [rec.state for rec in agent_device.board.read_journal()]
    failed = [r for r in fake_scheduler.reports if r["state"] == "failed"]
    assert failed
    assert failed[0]["error"]["code"] == CODES.code("loader", "SignatureError")


def test_a_scheduler_rotation_moves_the_agent_to_the_new_key(
        agent_device: Provisioned, fake_scheduler: FakeScheduler,
        scheduler_key: PrivateKey) -> None:
    new = keys.generate_private_key("ES256")
    rotation = sign_trust_update(TrustUpdate("scheduler", 1, (sec1_point(new),)),
                                 scheduler_key)
    # the rotation arrives in a schedule of the old key; the next one is signed by the new key,
    # in the same boot
    _schedule(fake_scheduler, scheduler_key, 3, trust=rotation)
    code, _ = _run(agent_device, 2)
    assert code == 0
    assert _nvm(agent_device)["trust.scheduler"] == [2, "00000001" + sec1_point(new).hex()]
    _schedule(fake_scheduler, new, 4, trust=rotation)
    code, out = _run(agent_device, 2)
    assert code == 0
    assert out["refused"] == 0
    assert out["last_number"] == 4
    _schedule(fake_scheduler, scheduler_key, 5)
    code, out = _run(agent_device, 2)
    assert out["refused"] >= 1
    assert out["last_number"] == 4


def test_a_rotation_not_signed_by_an_anchor_is_reported_and_changes_nothing(
        agent_device: Provisioned, fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
        scheduler_key: PrivateKey) -> None:
    stranger = keys.generate_private_key("ES256")
    rotation = sign_trust_update(TrustUpdate("vendor", 1, (sec1_point(stranger),)), stranger)
    _schedule(fake_scheduler, scheduler_key, 3, trust=rotation,
              release=(example_app(2), vendor_key))
    code, _ = _run(agent_device, RESET_BUDGET_S)
    assert code == 98  # the release of the vendor's key still installs
    assert "trust.vendor" not in _nvm(agent_device)
    errors = [r["error"]["code"] for r in fake_scheduler.reports if "error" in r]
    assert CODES.code("loader", "SignatureError") in errors
