"""QEMU machines never outlive the process that started them (suture.qemu.processes): a
terminated or finished parent leaves nothing running. ``sleep`` stands in for the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import sys, time
from suture.qemu import processes
processes.end_on_sigterm()
child = processes.start(["sleep", "300"])
print(child.pid, flush=True)
if sys.argv[1] == "wait":
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose here
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def _child_of(parent: subprocess.Popen[str]) -> int:
    assert parent.stdout is not None
    return int(parent.stdout.readline())


@pytest.mark.parametrize("end", ["sigterm", "normal exit"])
def test_the_machine_ends_with_its_parent(end: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT,
                               "wait" if end == "sigterm" else "exit"],
                              stdout=subprocess.PIPE, text=True)
    child = _child_of(parent)
    try:
        if end == "sigterm":
            assert _alive(child)
            parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == (143 if end == "sigterm" else 0)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), f"pid {child} outlived its parent ({end})"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_without_the_registry_the_machine_would_outlive_its_parent() -> None:
    """The check above can fail: a plain Popen's child survives its parent's SIGTERM."""
    code = PARENT.replace("processes.start(", "__import__('subprocess').Popen(")
    parent = subprocess.Popen([sys.executable, "-c", code, "wait"], stdout=subprocess.PIPE,
                              text=True)
    child = _child_of(parent)
    try:
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        time.sleep(0.3)
        assert _alive(child)
    finally:
        os.kill(child, signal.SIGKILL)
