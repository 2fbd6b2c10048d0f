"""Shared by the agent tests: where the agent's sources are, the test device's id, the fake
scheduler's state, and the script that runs the agent on a simulated device."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suture.keys import PrivateKey
from suture.scheduler.schedule_doc import Artifact, Schedule, sign_schedule
from suture.sim.testing import Provisioned, sign_payload

REPO = Path(__file__).resolve().parents[2]
DEVICE_DIR = REPO / "device"
DEVICE_ID = "bed-7"
EVENT_PREFIX = "SUTURE-AGENT "


def agent_events(stdout: str) -> list[dict[str, Any]]:
    """The events the agent printed (agent/events.py), in order."""
    return [json.loads(line[len(EVENT_PREFIX):]) for line in stdout.splitlines()
            if line.startswith(EVENT_PREFIX)]


@dataclass
class FakeScheduler:
    """Serves one schedule document, one envelope and one payload; records every request."""

    schedule: bytes = b""
    envelope: bytes = b""
    payload: bytes = b""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    #: every report's body as received (what its MAC and signature cover)
    raw_reports: list[bytes] = field(default_factory=list)
    #: every SUIT report's body (POST .../suit-reports), kept apart from the JSON reports
    suit_reports: list[bytes] = field(default_factory=list)
    #: the first payload response stops after this many bytes and then hangs (None: never)
    stall_after: int | None = None
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    #: with stall_after: close the connection there instead of hanging
    drop: bool = False
    #: the body of every report's answer (None: a well-formed acknowledgement)
    report_answer: bytes | None = None
    url: str = ""


def cut_power_while_stalled(dev: Provisioned, fake: FakeScheduler, loader_lib: Path) -> None:
    """Run the agent on ``dev`` until ``fake`` has stalled its payload (``stall_after``), then
    end the process wherever it is, as a power cut would."""
    env = dict(os.environ, MICROPYPATH=str(loader_lib))
    micropython = Path(sys.executable).parent / "micropython"
    proc = subprocess.Popen(
        [str(micropython), "-X", "heapsize=256K", "run.py", "boot", "+", "exec",
         "agent_run.py", str(DEVICE_DIR), "30"],
        cwd=dev.board.workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert fake.stalled.wait(30)
        time.sleep(1.0)
    finally:
        proc.kill()
        proc.wait()


# Run the agent for args[1] seconds of its clock, with the agent's sources from args[0].
AGENT_RUN = """
import sys
sys.path.insert(0, args[0])
from agent.runner import Agent
a = Agent(None)
a.run(max_s=float(args[1]))
out["refused"] = a.poller.refused
out["last_number"] = a.poller.last_number
"""


def serve_release(fake: FakeScheduler, vendor_key: PrivateKey, scheduler_key: PrivateKey,
                  *, action: int, payload: bytes, served: bytes | None = None,
                  window: tuple[int, int] | None = None,
                  announced: bytes | None = None) -> None:
    """Schedule release 5 (sequence number 2) of payload, signed by vendor_key; served: the
    bytes the payload URI answers instead; announced: the payload the schedule announces (its
    digest and size) instead."""
    envelope = sign_payload(payload, 2, vendor_key)
    told = payload if announced is None else announced
    now = int(time.time())
    art = Artifact(release_id=5, component="app", sequence_number=2,
                   envelope_uri=fake.url + "/api/v1/releases/5/envelope",
                   envelope_digest=hashlib.sha256(envelope).digest(),
                   envelope_size=len(envelope),
                   payload_uri=fake.url + "/api/v1/releases/5/payload",
                   payload_digest=hashlib.sha256(told).digest(), payload_size=len(told))
    fake.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=3, issued_at=now, action=action, next_poll=now + 1,
        poll_interval=1, rollout_id=9, artifact=art,
        not_before=window[0] if window else None, not_after=window[1] if window else None),
        scheduler_key)
    fake.envelope = envelope
    fake.payload = served if served is not None else payload


def reschedule(fake: FakeScheduler, key: PrivateKey, number: int, action: int) -> None:
    now = int(time.time())
    fake.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=number, issued_at=now, action=action, next_poll=now + 1,
        poll_interval=1, rollout_id=9), key)
