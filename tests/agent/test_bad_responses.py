"""The agent against a scheduler that answers garbage: a malformed schedule is a refused schedule
(counted, logged) and a malformed report acknowledgement a failed delivery; the loop goes on and
polls again, it never dies."""

from __future__ import annotations

import time

import cbor2
from agent_env import DEVICE_DIR, FakeScheduler, agent_events
from suture.formats import error_codes
from suture.keys import PrivateKey
from suture.sim.testing import Provisioned

SCALE = 10  # the agent's clock runs 10 times faster: its 10 s retry takes 1 s


def run_agent(dev: Provisioned, seconds: float) -> tuple[int, dict[str, object], list[dict]]:
    r = dev.device.run(["boot"], ["exec", "agent_run.py", str(DEVICE_DIR), str(seconds)],
                       env={"SUTURE_CLOCK": f"{time.time():f},{SCALE}"})
    return r.exit_code, r.result, agent_events(r.stdout)


def _polls(fake: FakeScheduler) -> int:
    return sum(1 for m, path, _ in fake.requests if m == "GET" and path.endswith("/schedule"))


def test_protected_header_not_a_byte_string(agent_device: Provisioned,
                                            fake_scheduler: FakeScheduler,
                                            scheduler_key: PrivateKey) -> None:
    """The attack campaign's document: a COSE_Sign1 whose protected header is the integer 5."""
    payload = cbor2.dumps({1: 1, 2: "bed-7", 3: 1, 4: 0, 5: 0, 15: 0, 16: 60})
    fake_scheduler.schedule = cbor2.dumps(cbor2.CBORTag(18, [5, {}, payload, bytes(64)]))
    code, out, events = run_agent(agent_device, 25)
    assert code == 0
    assert events[-1]["ev"] == "stop"
    assert _polls(fake_scheduler) >= 2  # refused, retried, refused again
    assert out["refused"] == _polls(fake_scheduler)
    refused = [e for e in events if e["ev"] == "refused"]
    assert refused
    assert all(e["code"] == error_codes.load().code("agent", "ScheduleSignatureError")
               for e in refused)
    assert out["last_number"] == -1


def test_report_acknowledgement_not_a_json_object(agent_device: Provisioned,
                                                  fake_scheduler: FakeScheduler) -> None:
    for answer in (b"[1, 2]", b"not json at all", b'"text"'):
        fake_scheduler.report_answer = answer
        fake_scheduler.requests.clear()
        code, _, events = run_agent(agent_device, 15)
        assert code == 0, answer
        assert events[-1]["ev"] == "stop"
        assert _polls(fake_scheduler) >= 1  # the bad answer did not end the cycle's poll
