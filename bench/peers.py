"""Peers: suture's polls beside gooseBit's DDI poll, the same client and devices in one run.

Needs PyPI (not run in CI): the peer, gooseBit (a Python hawkBit-DDI server, no signatures, no
MACs), is installed from PyPI at the versions ``bench/peer-requirements/goosebit.txt`` pins,
into a virtual environment of its own under ``build/peers/`` (``bench/goosebit_peer.py``; made
at the first run, reused after). Needs wrk (``tools/install-system-deps.sh``).

With the load generator of ``bench/scheduler.py`` (``CONCURRENCY`` requests in flight for
``SECONDS``, each device's requests signed before the measurement) and the same ``ACTIVE`` of
``DEVICES`` registered devices, one after the other in one run:

- the bare FastAPI endpoint (``bench/_bare_app.py``), the common baseline;
- suture's signed schedule poll, then suture's DDI base poll (``GET
  /DEFAULT/controller/v1/{id}``, ``Authorization: TargetToken``), against one scheduler on
  SQLite (``bench/ddi.py``);
- gooseBit's DDI base poll (no token: gooseBit's default), its devices registered by their
  first poll, on SQLite.

Before each measurement of a poll each device polls once (not counted). Right after the
client, wrk (``-t2 -c<CONCURRENCY>``, one device's URL, no signature: wrk cannot sign suture's
own poll) against the bare endpoint, suture's DDI poll and gooseBit's, as the peer was first
measured. Figures are given as ratios to the bare endpoint and to gooseBit's DDI poll in the
same run; ``client_to_wrk_bare_ratio`` (at least 1) shows the client is not the bottleneck.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench import _wrk, goosebit_peer
from bench.ddi import DdiPoller, _figures, _token, ddi_scheduler, suture_polls
from bench.scheduler import ACTIVE, CONCURRENCY, DEVICES, SECONDS, Poller, _free_port, _serve

_DDI_POLL = "/DEFAULT/controller/v1/{}"


def _wrk_figures(prefix: str, url: str, headers: dict[str, str] | None = None
                 ) -> dict[str, float]:
    """wrk against ``url`` with the client's concurrency and seconds."""
    return _wrk.results(prefix, _wrk.measure(url, seconds=SECONDS, connections=CONCURRENCY,
                                             headers=headers))


def _bare(active: list[str]) -> tuple[dict[str, float], dict[str, float]]:
    """The bare endpoint: the client's figures for ``active``, then wrk's."""
    port = _free_port()
    server = _serve(["bench._bare_app:app"], port, {})
    try:
        client = asyncio.run(Poller(f"http://127.0.0.1:{port}", active, False).run(SECONDS))
        return client, _wrk_figures("bare", f"http://127.0.0.1:{port}/bare/{active[0]}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _goosebit(tmp: Path, everyone: list[str], active: list[str]
              ) -> tuple[dict[str, float], dict[str, float]]:
    """gooseBit's DDI base polls: every device registered by its first poll, each of the
    ``active`` ones polled once more, then the client's measurement over them and wrk's."""
    port = _free_port()
    peer = goosebit_peer.serve(tmp, port)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(DdiPoller(base, everyone, tokens=False).run(600.0, once=True))
        polls = DdiPoller(base, active, tokens=False)
        asyncio.run(polls.run(120.0, once=True))
        client = asyncio.run(polls.run(SECONDS))
        return client, _wrk_figures("goosebit_ddi", base + _DDI_POLL.format(active[0]))
    finally:
        peer.terminate()
        peer.wait(timeout=30)


def run() -> dict[str, Any]:
    _wrk.require()
    goosebit_peer.python()  # installed (PyPI) before anything is measured
    with tempfile.TemporaryDirectory(prefix="suture-bench-peers-") as name:
        tmp = Path(name)
        with ddi_scheduler(tmp) as (port, everyone, active):
            bare, wrk_bare = _bare(active)
            signed, ddi = suture_polls(port, active)
            wrk_ddi = _wrk_figures(
                "suture_ddi", f"http://127.0.0.1:{port}" + _DDI_POLL.format(active[0]),
                {"Authorization": f"TargetToken {_token(active[0])}"})
        peer, wrk_peer = _goosebit(tmp, everyone, active)
    out: dict[str, Any] = {"registered_devices": DEVICES, "polling_devices": ACTIVE,
                           "concurrency": CONCURRENCY, "goosebit_version": goosebit_peer.VERSION}
    out.update(_figures("bare", bare, unit="requests"))
    out.update(_figures("suture_schedule", signed))
    out.update(_figures("suture_ddi", ddi))
    out.update(_figures("goosebit_ddi", peer))
    for prefix, figures in (("suture_schedule", signed), ("suture_ddi", ddi),
                            ("goosebit_ddi", peer)):
        out[f"{prefix}_polls_ratio_to_bare"] = round(figures["rps"] / bare["rps"], 3)
        out[f"{prefix}_p99_ratio_to_bare"] = round(figures["p99_ms"] / bare["p99_ms"], 2)
    out["suture_schedule_to_goosebit_ddi_ratio"] = round(signed["rps"] / peer["rps"], 3)
    out["suture_ddi_to_goosebit_ddi_ratio"] = round(ddi["rps"] / peer["rps"], 3)
    out["suture_ddi_p99_to_goosebit_ddi_p99_ratio"] = round(
        ddi["p99_ms"] / peer["p99_ms"], 2)
    out.update(wrk_bare)
    out.update(wrk_ddi)
    out.update(wrk_peer)
    wrk_bare_rps = wrk_bare["wrk_bare_requests_per_s"]
    out["client_to_wrk_bare_ratio"] = round(bare["rps"] / wrk_bare_rps, 3)
    out["wrk_suture_ddi_ratio_to_wrk_bare"] = round(
        wrk_ddi["wrk_suture_ddi_requests_per_s"] / wrk_bare_rps, 3)
    out["wrk_goosebit_ddi_ratio_to_wrk_bare"] = round(
        wrk_peer["wrk_goosebit_ddi_requests_per_s"] / wrk_bare_rps, 3)
    return out
