"""The agent's own codes, end to end on the unix port: a release whose signed manifest is not the
one the schedule announced is discarded with DownloadError's code in the journal; a revert asked
of a device without a trial is answered once with NO_TRIAL_TO_REVERT; an unhealthy trial is
reported with UNHEALTHY before the revert. Each code is the agent's (its range of
host/suture/formats/error_codes.toml), so the host names it without knowing the context."""

from __future__ import annotations

import json

from agent_env import DEVICE_DIR, FakeScheduler, reschedule, serve_release
from suture.formats import error_codes
from suture.keys import PrivateKey
from suture.sim.journal import State
from suture.sim.testing import Provisioned, example_app

CODES = error_codes.load()
REVERT = 3
INSTALL = 2
DOWNLOAD = 1

# The agent with an application whose health check fails.
UNHEALTHY_RUN = """
import sys
sys.path.insert(0, args[0])
from agent.runner import Agent
class App:
    def busy(self):
        return False
    def health(self):
        return False
Agent(App()).run(max_s=float(args[1]))
"""


def run_agent(dev: Provisioned, seconds: float, script: str = "agent_run.py") -> int:
    r = dev.device.run(["boot"], ["exec", script, str(DEVICE_DIR), str(seconds)])
    assert r.exit_code in (0, 98), r.stdout + r.stderr
    return r.exit_code


def errors(fake: FakeScheduler) -> list[tuple[str, int]]:
    return [(r["state"], r["error"]["code"]) for r in fake.reports if "error" in r]


def test_a_manifest_the_schedule_did_not_announce_is_discarded(
        agent_device: Provisioned, fake_scheduler: FakeScheduler, vendor_key: PrivateKey,
        scheduler_key: PrivateKey) -> None:
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=DOWNLOAD,
                  payload=example_app(2), announced=example_app(2, filler=100))
    assert run_agent(agent_device, 3) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert (cur.state, cur.progress) == (State.FAILED, CODES.code("agent", "DownloadError"))
    assert CODES.name(cur.progress) == "agent DownloadError"
    assert ("failed", CODES.code("agent", "DownloadError")) in errors(fake_scheduler)
    assert not any(p.endswith("/payload") for _, p, _ in fake_scheduler.requests)


def test_a_revert_without_a_trial_is_answered_once(agent_device: Provisioned,
                                                   fake_scheduler: FakeScheduler,
                                                   scheduler_key: PrivateKey) -> None:
    reschedule(fake_scheduler, scheduler_key, 4, REVERT)
    assert run_agent(agent_device, 4) == 0
    cur = agent_device.board.current_record()
    assert cur is not None
    assert (cur.state, cur.version) == (State.CONFIRMED, 1)
    code = CODES.code("agent", "NO_TRIAL_TO_REVERT")
    assert errors(fake_scheduler) == [("confirmed", code)]  # once, though polled again
    assert sum(1 for m, p, _ in fake_scheduler.requests if p.endswith("/schedule")) >= 2


def test_an_unhealthy_trial_is_reported_then_reverted(agent_device: Provisioned,
                                                      fake_scheduler: FakeScheduler,
                                                      vendor_key: PrivateKey,
                                                      scheduler_key: PrivateKey) -> None:
    serve_release(fake_scheduler, vendor_key, scheduler_key, action=INSTALL,
                  payload=example_app(2))
    (agent_device.board.workdir / "unhealthy_run.py").write_text(UNHEALTHY_RUN)
    assert run_agent(agent_device, 5, "unhealthy_run.py") == 98  # installs
    assert run_agent(agent_device, 5, "unhealthy_run.py") == 98  # trial: unhealthy, reverts
    unhealthy = [r for r in fake_scheduler.reports
                 if r.get("error", {}).get("code") == CODES.code("agent", "UNHEALTHY")]
    assert [r["state"] for r in unhealthy] == ["trial"], json.dumps(fake_scheduler.reports)
    assert unhealthy[0]["error"]["message"] == "application health check failed"
    assert agent_device.device.run(["boot"]).ok  # the loader restores #1
    cur = agent_device.board.current_record()
    assert cur is not None
    assert (cur.state, cur.version, cur.progress) == (State.REVERTED, 1, 0)
