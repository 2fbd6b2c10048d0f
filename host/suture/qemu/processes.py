"""QEMU machines never outlive the process that started them.

Every machine suture starts goes through :func:`start`, which keeps it in a registry; at the
interpreter's exit (normal, an exception, ``SystemExit``) :func:`stop_all` kills what is still
running, and :func:`end_on_sigterm` turns SIGTERM into ``SystemExit`` so a terminated command
(``suture sim --target qemu-…``, a cancelled test run) cleans up too. A machine left behind keeps a
core busy for as long as the host runs.
"""

from __future__ import annotations

import atexit
import signal
import subprocess
import threading
import weakref
from collections.abc import Sequence
from types import FrameType
from typing import Any

_LIVE: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()
_LOCK = threading.Lock()


def start(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)``, killed at this process's exit if still running."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(list(argv), **popen)
    with _LOCK:
        _LIVE.add(proc)
    return proc


def running() -> list[subprocess.Popen[bytes]]:
    """The machines started here that still run."""
    with _LOCK:
        return [p for p in _LIVE if p.poll() is None]


def stop_all() -> int:
    """Kill every machine started here that still runs; how many there were."""
    procs = running()
    for proc in procs:
        proc.kill()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
    return len(procs)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def end_on_sigterm() -> None:
    """From now on SIGTERM ends this process as ``SystemExit(143)``: ``finally`` blocks and
    :func:`stop_all` run. Only the main thread can install a handler; elsewhere nothing changes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


atexit.register(stop_all)
