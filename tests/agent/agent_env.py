"""Shared by the agent tests: where the agent's sources are, the test device's id, the fake
scheduler's state, and the script that runs the agent on a simulated device."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEVICE_DIR = REPO / "device"
DEVICE_ID = "bed-7"


@dataclass
class FakeScheduler:
    """Serves one schedule document, one envelope and one payload; records every request."""

    schedule: bytes = b""
    envelope: bytes = b""
    payload: bytes = b""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    #: the first payload response stops after this many bytes and then hangs (None: never)
    stall_after: int | None = None
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    #: with stall_after: close the connection there instead of hanging
    drop: bool = False
    #: the body of every report's answer (None: a well-formed acknowledgement)
    report_answer: bytes | None = None
    url: str = ""


# Run the agent for args[1] seconds of its clock, with the agent's sources from args[0].
AGENT_RUN = """
import sys
sys.path.insert(0, args[0])
from agent.runner import Agent
a = Agent(None)
a.run(max_s=float(args[1]))
out["refused"] = a.refused
out["last_number"] = a.last_number
"""
