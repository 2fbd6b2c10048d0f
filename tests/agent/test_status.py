"""The status protocol's board side (docs/hil.md) while the agent runs and waits."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from agent_env import DEVICE_DIR, DEVICE_ID, FakeScheduler
from suture.devicectl.status_protocol import encode_request, parse_response
from suture.keys import PrivateKey
from suture.scheduler.schedule_doc import Schedule, sign_schedule
from suture.sim.testing import Provisioned


def test_running_agent_answers_status_requests(agent_device: Provisioned,
                                               fake_scheduler: FakeScheduler,
                                               scheduler_key: PrivateKey,
                                               loader_lib: Path) -> None:
    now = int(time.time())
    fake_scheduler.schedule = sign_schedule(Schedule(
        device_id=DEVICE_ID, number=4, issued_at=now, action=0, next_poll=now + 600,
        poll_interval=600), scheduler_key)
    env = dict(os.environ, MICROPYPATH=str(loader_lib))
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "micropython"), "-X", "heapsize=256K", "run.py",
         "boot", "+", "exec", "agent_run.py", str(DEVICE_DIR), "60"],
        cwd=agent_device.board.workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    assert proc.stdout is not None
    answers = []
    try:
        deadline = time.monotonic() + 30
        polled = False
        while time.monotonic() < deadline and not polled:  # wait for the first poll
            polled = any(m == "GET" for m, _, _ in fake_scheduler.requests)
            time.sleep(0.1)
        assert polled
        proc.stdin.write(b"some typing the agent ignores\n")
        proc.stdin.write(encode_request(7, ["state", "versions", "journal", "identity",
                                            "agent"]))
        proc.stdin.write(b"\x1eSUTURE-STATUS? not json\n")
        proc.stdin.flush()
        pending = b""
        fd = proc.stdout.fileno()
        while time.monotonic() < deadline and len(answers) < 2:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                answer = parse_response(line)
                if answer is not None:
                    answers.append(answer)
    finally:
        (agent_device.board.workdir / "stop").write_text("stop\n")
        proc.wait(30)
    first, second = answers
    assert first["id"] == 7
    assert first["state"] == "CONFIRMED"
    assert first["installed_version"] == 1
    assert first["device_id"] == DEVICE_ID
    assert first["journal"][-1][1] == "CONFIRMED"
    assert first["agent"]["schedule_number"] == 4
    assert first["agent"]["phase"] == "idle"
    assert second == {"id": 0, "error": "malformed request"}
    json.dumps(first)
